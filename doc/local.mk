# SPDX-License-Identifier: BSD-3-Clause
# rules for doc: the man pages, written in scdoc (doc/NAME.N.scd) and built
# into doc/NAME.N by scdoc, then doc/man-tidy.awk (which only moves or drops
# paragraph macros roff ignores, so `mandoc -T lint` is clean).  The built
# pages go into the tarball (dist_man_MANS), so building from a tarball
# needs no scdoc; from a git checkout configure requires it.  `make check`
# lints every page and checks hpfriendsd.conf(5) against the keys the
# parsers accept (tests/system/test_manpages.py).

%canon_reldir%_scd = \
	%reldir%/hpfriendsd.8.scd \
	%reldir%/hpfriendsctl.8.scd \
	%reldir%/hpfriendsd.conf.5.scd \
	%reldir%/hpfeeds-cli.1.scd \
	%reldir%/hpfriends-plugin.7.scd

dist_man_MANS = $(%canon_reldir%_scd:.scd=)
EXTRA_DIST += $(%canon_reldir%_scd) %reldir%/man-tidy.awk
# Shipped, so only maintainer-clean removes them.
MAINTAINERCLEANFILES = $(dist_man_MANS)

%canon_reldir%_build = $(AM_V_GEN)$(MKDIR_P) $(@D) && \
	if test -z '$(SCDOC)'; then \
	  echo "$@: scdoc is needed to build it (apt-get install scdoc)" >&2; exit 1; \
	fi && \
	$(SCDOC) < $< > $@.raw && \
	$(AWK) -f $(srcdir)/%reldir%/man-tidy.awk $@.raw > $@.tmp && \
	rm -f $@.raw && mv -f $@.tmp $@

%reldir%/hpfriendsd.8: %reldir%/hpfriendsd.8.scd %reldir%/man-tidy.awk
	$(%canon_reldir%_build)
%reldir%/hpfriendsctl.8: %reldir%/hpfriendsctl.8.scd %reldir%/man-tidy.awk
	$(%canon_reldir%_build)
%reldir%/hpfriendsd.conf.5: %reldir%/hpfriendsd.conf.5.scd %reldir%/man-tidy.awk
	$(%canon_reldir%_build)
%reldir%/hpfeeds-cli.1: %reldir%/hpfeeds-cli.1.scd %reldir%/man-tidy.awk
	$(%canon_reldir%_build)
%reldir%/hpfriends-plugin.7: %reldir%/hpfriends-plugin.7.scd %reldir%/man-tidy.awk
	$(%canon_reldir%_build)
