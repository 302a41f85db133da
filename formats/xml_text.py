"""What XML 1.0 can hold: text a user names things with (classes, files) may not fit.

`NOT_XML` matches the characters XML 1.0 cannot hold, escaped or not (its Char production):
control characters but tab, newline and carriage return, lone surrogates, U+FFFE and U+FFFF. A
parser refuses a whole file holding one. Exports that must keep a name as it is (VOC, Label
Studio's labeling config) refuse such names with `unfit_for_xml`; a chart draws them as U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# How a refusal names what is wrong with such a name.
UNFIT_FOR_XML = "hold characters XML cannot (control characters or lone surrogates)"


def unfit_for_xml(names: Iterable[str]) -> list[str]:
    """The names among `names` that XML 1.0 cannot hold, in their order."""
    return [name for name in names if NOT_XML.search(name)]
