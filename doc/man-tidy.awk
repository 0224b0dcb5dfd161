# SPDX-License-Identifier: BSD-3-Clause
# Tidies scdoc's output so that `mandoc -T lint` has nothing to say about
# where it puts paragraph macros, without changing the formatted page
# (doc/local.mk builds it; tests/system/test_manpages.py lints it and
# checks that mandoc and groff format it exactly as scdoc's own output):
#  - a .P right after .TH, .SH or .SS, or right before .SH, .SS or another
#    .P, is dropped: roff ignores it ("skipping paragraph macro");
#  - a .P right before .RE (the blank line that ends an indented block) is
#    moved after the .RE, where it makes the same blank line.
function is_heading(l) { return l ~ /^\.(TH|SH|SS)( |$)/ }
{
    if (held) {
        held = 0
        if ($0 ~ /^\.RE( |$)/) {
            print
            $0 = ".P"
            prev = ".RE"
        } else if (!is_heading($0) && $0 != ".P") {
            print ".P"
        }
    }
    if ($0 == ".P") {
        if (!is_heading(prev))
            held = 1
        next
    }
    print
    prev = $0
}
END { if (held) print ".P" }
