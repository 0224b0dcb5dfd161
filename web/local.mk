# SPDX-License-Identifier: BSD-3-Clause
# The console's static files, installed where hpfriendsd looks for them
# ($(pkgdatadir)/web; [web] root or $HPFRIENDS_WEB_ROOT override it).
webdir = $(pkgdatadir)/web
dist_web_DATA = %reldir%/index.html %reldir%/app.css %reldir%/app.js %reldir%/main.js \
	%reldir%/page-shares.js %reldir%/page-offers.js %reldir%/page-authkeys.js \
	%reldir%/page-groups.js %reldir%/page-logs.js %reldir%/page-graph.js %reldir%/page-account.js \
	%reldir%/favicon.svg %reldir%/cytoscape.min.js %reldir%/cytoscape.LICENSE \
	%reldir%/page-admin.js %reldir%/page-audit.js %reldir%/listview.js
# web/VENDORED pins the third-party files above (version, licence, sha256).
EXTRA_DIST += %reldir%/VENDORED
