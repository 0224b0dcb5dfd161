# SPDX-License-Identifier: BSD-3-Clause
sdkinclude_HEADERS += \
	%reldir%/hpfriends/plugin.h \
	%reldir%/hpfriends/storage.h \
	%reldir%/hpfriends/auth.h \
	%reldir%/hpfriends/sink.h \
	%reldir%/hpfriends/cluster.h \
	%reldir%/hpfriends/names.h
