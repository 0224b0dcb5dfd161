# SPDX-License-Identifier: BSD-3-Clause
# The console's static files, installed where hpfriendsd looks for them
# ($(pkgdatadir)/web; [web] root or $HPFRIENDS_WEB_ROOT override it).
webdir = $(pkgdatadir)/web
dist_web_DATA = %reldir%/index.html %reldir%/app.js %reldir%/app.css
