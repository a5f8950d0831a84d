/**
 * ANSI escape sequences in kernel output (IPython colours its tracebacks).
 *
 * Colours (SGR codes) become styled segments; every other escape sequence
 * (cursor moves, erase line) is dropped so none reaches the screen raw.
 */

export interface AnsiSegment {
  text: string;
  /** CSS class names, e.g. `ansi-red-fg`, `ansi-bold`. */
  classes: string[];
}

const COLOURS = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

// CSI sequences (ESC [ params final-byte) and two-byte escapes (ESC + one char).
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-9;?]*)([@-~])|\x1b[@-Z\\-_]/g;

/** The text without any escape sequence. */
export function stripAnsi(text: string): string {
  return text.replace(ESCAPE, '');
}

interface Style {
  fg: string | null;
  bg: string | null;
  bold: boolean;
  underline: boolean;
}

function applySgr(style: Style, params: string): void {
  const codes = params === '' ? [0] : params.split(';').map(p => Number(p) || 0);
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) {
      Object.assign(style, { fg: null, bg: null, bold: false, underline: false });
    } else if (code === 1) {
      style.bold = true;
    } else if (code === 4) {
      style.underline = true;
    } else if (code === 22) {
      style.bold = false;
    } else if (code === 24) {
      style.underline = false;
    } else if (code >= 30 && code <= 37) {
      style.fg = COLOURS[code - 30];
    } else if (code >= 90 && code <= 97) {
      style.fg = `bright-${COLOURS[code - 90]}`;
    } else if (code >= 40 && code <= 47) {
      style.bg = COLOURS[code - 40];
    } else if (code >= 100 && code <= 107) {
      style.bg = `bright-${COLOURS[code - 100]}`;
    } else if (code === 39) {
      style.fg = null;
    } else if (code === 49) {
      style.bg = null;
    } else if (code === 38 || code === 48) {
      // 256-colour (5;n) and true-colour (2;r;g;b): map the first 16 of the
      // 256 palette, skip the rest rather than misreading their parameters.
      const mode = codes[i + 1];
      const n = codes[i + 2];
      const name = mode === 5 && n < 16 ? (n < 8 ? COLOURS[n] : `bright-${COLOURS[n - 8]}`) : null;
      if (code === 38) {
        style.fg = name;
      } else {
        style.bg = name;
      }
      i += mode === 5 ? 2 : mode === 2 ? 4 : 0;
    }
  }
}

function classesOf(style: Style): string[] {
  const classes: string[] = [];
  if (style.fg) {
    classes.push(`ansi-${style.fg}-fg`);
  }
  if (style.bg) {
    classes.push(`ansi-${style.bg}-bg`);
  }
  if (style.bold) {
    classes.push('ansi-bold');
  }
  if (style.underline) {
    classes.push('ansi-underline');
  }
  return classes;
}

/** Split text into segments of one style each; escape sequences are consumed. */
export function parseAnsi(text: string): AnsiSegment[] {
  const segments: AnsiSegment[] = [];
  const style: Style = { fg: null, bg: null, bold: false, underline: false };
  let last = 0;
  const push = (chunk: string): void => {
    if (!chunk) {
      return;
    }
    const classes = classesOf(style);
    const previous = segments[segments.length - 1];
    if (previous && previous.classes.join(' ') === classes.join(' ')) {
      previous.text += chunk;
    } else {
      segments.push({ text: chunk, classes });
    }
  };
  for (const match of text.matchAll(ESCAPE)) {
    push(text.slice(last, match.index));
    if (match[2] === 'm') {
      applySgr(style, match[1]);
    }
    last = (match.index ?? 0) + match[0].length;
  }
  push(text.slice(last));
  return segments;
}
