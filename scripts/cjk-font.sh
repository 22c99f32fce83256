#!/usr/bin/env bash
# Remakes client-core/fonts/NotoSansSC-GB2312.otf, the font of the printable daily log (施工日志):
# Noto Sans CJK SC Regular (SIL Open Font License 1.1; Debian's fonts-noto-cjk) cut down to the
# characters a Chinese site log is written in, so the repository carries 1.7 MB (1.4 MB compressed in git) instead of 19 MB and a
# fresh clone renders CJK with no fonts installed:
#   - GB 2312: all 6,763 hanzi (levels 1 and 2) and its symbols, kana and Greek/Cyrillic rows;
#   - ASCII, Latin-1, general punctuation, CJK symbols and punctuation, full- and half-width forms,
#     letter-like symbols and the squared units (㎡ ㎥ ㎏), super/subscripts (m³);
#   - anything outside this set prints as the font's empty box (.notdef), and the renderer
#     counts such characters so a report says when a name needed a rarer character.
# Needs pyftsubset (Debian fonttools) and fonts-noto-cjk; the output is deterministic for one
# fonttools version (4.38 made the committed file).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc}
chars=$(mktemp)
trap 'rm -f "$chars"' EXIT
/usr/bin/python3 - "$chars" <<'PY'
import sys
out = set()
# GB 2312 rows 1-9 (symbols) and 16-87 (hanzi), each 94 cells from 0xA1.
for hi in list(range(0xA1, 0xAA)) + list(range(0xB0, 0xF8)):
    for lo in range(0xA1, 0xFF):
        try:
            out.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
ranges = [(0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2070, 0x209F), (0x2100, 0x214F),
          (0x2150, 0x218F), (0x2190, 0x21FF), (0x2460, 0x24FF), (0x2500, 0x257F), (0x25A0, 0x25FF),
          (0x3000, 0x303F), (0x3200, 0x32FF), (0x3300, 0x33FF), (0xFF00, 0xFFEF)]
for a, b in ranges:
    out.update(chr(c) for c in range(a, b + 1))
open(sys.argv[1], "w", encoding="utf-8").write("".join(sorted(out)))
PY
# Font number 2 of the collection is Noto Sans CJK SC. Hinting is dropped (PDF viewers do not use
# it), and so are the layout features that pull in other glyphs (the Japanese, Korean and
# traditional forms behind `locl`, vertical and proportional forms): the log is set horizontally in
# simplified Chinese, and without them the file is 1.7 MB instead of 3.1 MB.
pyftsubset "$src" --font-number=2 --text-file="$chars" \
    --output-file=client-core/fonts/NotoSansSC-GB2312.otf \
    --no-hinting --name-IDs='*' --name-languages='*' --layout-features='kern,ccmp,liga,mark,mkmk'
ls -l client-core/fonts/NotoSansSC-GB2312.otf
