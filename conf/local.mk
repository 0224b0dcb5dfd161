# SPDX-License-Identifier: BSD-3-Clause
# rules for conf/: what `make install` puts in place for a system service.
#
# - hpfriendsd.service and hpfriendsd@.service (template: one broker per
#   config NAME.conf) into the systemd unit directory from configure
#   (--with-systemdsystemunitdir; `make distcheck` points it into its
#   staging prefix);
# - a sample $(sysconfdir)/hpfriends/hpfriendsd.conf, never over an existing
#   one; `make uninstall` removes it only while it is unchanged;
# - a logrotate snippet for the file sinks' logs, $(sysconfdir)/logrotate.d/hpfriends.
#
# The installed sample is conf/hpfriendsd.conf (every key with its default)
# with the settings of a packaged deployment filled in: user hpfriends and
# the database under $(localstatedir)/lib/hpfriends.  A substitution that no
# longer matches its line fails the build instead of installing a sample
# without it.

conf_generated = %reldir%/hpfriendsd.service %reldir%/hpfriendsd@.service \
	%reldir%/hpfriends.logrotate %reldir%/hpfriendsd.conf.sample
EXTRA_DIST += %reldir%/hpfriendsd.service.in %reldir%/hpfriendsd@.service.in \
	%reldir%/hpfriends.logrotate.in
CLEANFILES += $(conf_generated)
noinst_DATA = $(conf_generated)

if INSTALL_UNITS
systemdsystemunit_DATA = %reldir%/hpfriendsd.service %reldir%/hpfriendsd@.service
endif
logrotatedir = $(sysconfdir)/logrotate.d

conf_subst = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g' -e 's|@pkgdatadir[@]|$(pkgdatadir)|g'

%reldir%/hpfriendsd.service: %reldir%/hpfriendsd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(conf_subst) $(srcdir)/%reldir%/hpfriendsd.service.in > $@.tmp && mv -f $@.tmp $@
%reldir%/hpfriendsd@.service: %reldir%/hpfriendsd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(conf_subst) $(srcdir)/%reldir%/hpfriendsd@.service.in > $@.tmp && mv -f $@.tmp $@
%reldir%/hpfriends.logrotate: %reldir%/hpfriends.logrotate.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(conf_subst) $(srcdir)/%reldir%/hpfriends.logrotate.in > $@.tmp && mv -f $@.tmp $@

# Each substituted line must be there exactly as expected: checked after sed.
%reldir%/hpfriendsd.conf.sample: %reldir%/hpfriendsd.conf Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && { \
	  sed -n 1p $(srcdir)/%reldir%/hpfriendsd.conf && \
	  echo '# Installed sample: runs as user hpfriends (see [broker] user), with its' && \
	  echo '# data under $(localstatedir)/lib/hpfriends.  Check: hpfriendsd -t -c FILE' && \
	  sed -e 1d \
	    -e '0,/^# user =$$/s//user = hpfriends/' \
	    -e 's|^path = hpfriends.db$$|path = $(localstatedir)/lib/hpfriends/hpfriends.db|' \
	    -e 's|^# plugin_dir = .*|# plugin_dir = $(pluginsdir)|' \
	    -e 's|^# root = .*/hpfriends/web$$|# root = $(pkgdatadir)/web|' \
	    $(srcdir)/%reldir%/hpfriendsd.conf; \
	} > $@.tmp && \
	test `grep -c '^user = hpfriends$$' $@.tmp` = 1 && \
	grep -q '^path = $(localstatedir)/lib/hpfriends/hpfriends.db$$' $@.tmp && \
	mv -f $@.tmp $@

install-data-local: install-conf-sample install-logrotate
uninstall-local: uninstall-conf-sample uninstall-logrotate
.PHONY: install-conf-sample uninstall-conf-sample install-logrotate uninstall-logrotate

install-conf-sample: %reldir%/hpfriendsd.conf.sample
	$(MKDIR_P) '$(DESTDIR)$(sysconfdir)/hpfriends'
	@if test -e '$(DESTDIR)$(sysconfdir)/hpfriends/hpfriendsd.conf'; then \
	  echo "keeping the existing $(DESTDIR)$(sysconfdir)/hpfriends/hpfriendsd.conf"; \
	else \
	  echo " $(INSTALL_DATA) $< '$(DESTDIR)$(sysconfdir)/hpfriends/hpfriendsd.conf'"; \
	  $(INSTALL_DATA) $< '$(DESTDIR)$(sysconfdir)/hpfriends/hpfriendsd.conf'; \
	fi

# An edited config is the operator's: it stays.
uninstall-conf-sample: %reldir%/hpfriendsd.conf.sample
	@f='$(DESTDIR)$(sysconfdir)/hpfriends/hpfriendsd.conf'; \
	if test -f "$$f" && cmp -s $< "$$f"; then \
	  echo " rm -f '$$f'"; rm -f "$$f"; \
	elif test -f "$$f"; then \
	  echo "keeping $$f: it was changed"; \
	fi; \
	rmdir '$(DESTDIR)$(sysconfdir)/hpfriends' 2>/dev/null || :

install-logrotate: %reldir%/hpfriends.logrotate
	$(MKDIR_P) '$(DESTDIR)$(logrotatedir)'
	$(INSTALL_DATA) $< '$(DESTDIR)$(logrotatedir)/hpfriends'

uninstall-logrotate:
	rm -f '$(DESTDIR)$(logrotatedir)/hpfriends'

# distcheck installs into a staging prefix: the units go there too.
DISTCHECK_CONFIGURE_FLAGS += \
	--with-systemdsystemunitdir='$$(prefix)/lib/systemd/system'
