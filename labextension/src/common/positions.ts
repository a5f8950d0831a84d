/**
 * Jupyter counts cursor positions in Unicode code points; JavaScript strings
 * (and Monaco's offsets) count UTF-16 code units. The two differ after any
 * character outside the Basic Multilingual Plane (emoji, some CJK).
 */

/** The code-point position of a UTF-16 offset in `text`. */
export function toCodePoints(text: string, utf16Offset: number): number {
  return Array.from(text.slice(0, utf16Offset)).length;
}

/** The UTF-16 offset of a code-point position in `text`. */
export function toUtf16(text: string, codePoints: number): number {
  let offset = 0;
  let seen = 0;
  for (const char of text) {
    if (seen === codePoints) {
      break;
    }
    offset += char.length;
    seen++;
  }
  return offset;
}
