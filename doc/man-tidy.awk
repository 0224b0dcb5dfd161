# SPDX-License-Identifier: BSD-3-Clause
# Tidies scdoc's output so that `mandoc -T lint -W warning` has nothing to
# say about where it puts paragraph macros ("PP empty", "PP after SH": the
# only messages it has for scdoc 1.11's pages here), without changing the
# formatted page: mandoc -T utf8 and groff -man give byte for byte the same
# text for scdoc's output and for this one.  doc/local.mk runs it;
# tests/system/test_manpages.py lints the result:
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
