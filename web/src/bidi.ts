// People's text (titles, list names, usernames) in the page's own sentences, isolated so
// that a right-to-left one cannot reorder the sentence around it (UAX #9 isolates).
//
// Per place: where the text is a node of its own in JSX (a row's title, a menu item, a
// member's name), it goes in a <bdi>. Where it is spliced into a string (notices, confirm
// dialogs, aria-labels, <option> text, which cannot hold elements), `isolate` wraps it in
// FSI U+2068 ... PDI U+2069: invisible, and skipped by screen readers.
//
// Our sentences are English, so left-to-right: a piece with no right-to-left letter, Arabic
// digit or bidi control cannot move anything in them, and `isolate` leaves it as it is.
// That keeps accessible names such as `Delete "draft"` exactly as they were: Chromium hands
// FSI/PDI on in the name, and name matching (Playwright's, and assistive technology's
// searches) does not ignore them.

export const FSI = '\u2068';
export const PDI = '\u2069';

// The blocks where Unicode puts right-to-left and Arabic-number characters (assigned or
// not: DerivedBidiClass.txt's R/AL defaults), and the explicit bidi controls (an RLO
// would reverse the rest of the sentence).
const NEEDS_ISOLATION =
  /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefe\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]|\p{Bidi_Control}/u;

/** `text` isolated for one of our sentences: FSI text PDI when it could reorder it. */
export function isolate(text: string): string {
  return NEEDS_ISOLATION.test(text) ? `${FSI}${balanced(text)}${PDI}` : text;
}

// A paragraph separator (bidi class B) ends every isolate, embedding and override open
// before it, ours too: the text after it, and the sentence after the text, would stand
// outside any isolate (an RLO there reversed the rest of the sentence).
const PARAGRAPH_SEPARATOR = /[\n\r\u001c-\u001e\u0085\u2029]/;

// An isolate ends at the first PDI not matched inside it: a stray PDI in the text would
// end ours early, and an unclosed LRI/RLI/FSI would swallow our PDI. Drop the one, close
// the other (both invisible). After a paragraph separator (a run of them: CR LF is one),
// the rest of the text is isolated again.
function balanced(text: string): string {
  let open = 0;
  let out = '';
  let paragraphEnded = false;
  for (const c of text) {
    if (PARAGRAPH_SEPARATOR.test(c)) {
      out += c;
      open = 0;
      paragraphEnded = true;
      continue;
    }
    if (paragraphEnded) {
      out += FSI;
      paragraphEnded = false;
    }
    if (c === '\u2066' || c === '\u2067' || c === FSI) open += 1;
    else if (c === PDI) {
      if (open === 0) continue;
      open -= 1;
    }
    out += c;
  }
  return out + (paragraphEnded ? FSI : '') + PDI.repeat(open);
}
