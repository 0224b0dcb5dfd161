# SPDX-License-Identifier: BSD-3-Clause
# auth_env: read-only authkeys from HPFEEDS_<IDENT>_* environment variables
# (hpfeeds-broker's --auth env).
plugins_LTLIBRARIES += plugins/auth_env.la
plugins_auth_env_la_SOURCES = plugins/auth_env/auth_env.c
plugins_auth_env_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_auth_env_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
plugins_auth_env_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_auth_env_la_LIBADD = $(GLIB_LIBS)
