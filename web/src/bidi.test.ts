import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { FSI, isolate, PDI } from './bidi';
import type { Commands } from './commands';
import type { TodoList } from './lists';
import { ListSwitcher } from './ListSwitcher';
import { TodoItem } from './TodoItem';

const HEBREW = 'אבג 123';
const ARABIC = 'مرحبا!';

describe('isolate', () => {
  it('wraps right-to-left text, Arabic digits and bidi controls in FSI ... PDI', () => {
    expect(isolate(HEBREW)).toBe(`${FSI}${HEBREW}${PDI}`);
    expect(isolate(ARABIC)).toBe(`${FSI}${ARABIC}${PDI}`);
    expect(isolate('milk ١٢٣')).toBe(`${FSI}milk ١٢٣${PDI}`);
    // An RLO would reverse the rest of the sentence; an RLM makes its neighbours RTL.
    expect(isolate('\u202eabc')).toBe(`${FSI}\u202eabc${PDI}`);
    expect(isolate('abc\u200f!')).toBe(`${FSI}abc\u200f!${PDI}`);
    // Beyond the BMP: Adlam.
    expect(isolate('𞤀𞤁')).toBe(`${FSI}𞤀𞤁${PDI}`);
  });

  it('leaves text that cannot reorder a left-to-right sentence as it is', () => {
    for (const text of ['draft', 'abc!', '123', 'second, renamed', 'e\u0301', '🎉', '', 'Ελληνικά', '日本語']) {
      expect(isolate(text)).toBe(text);
    }
  });

  it('keeps its isolate whole: a stray PDI is dropped, an unclosed isolate closed', () => {
    expect(isolate(`${PDI}אבג`)).toBe(`${FSI}אבג${PDI}`);
    expect(isolate('\u2067אבג')).toBe(`${FSI}\u2067אבג${PDI}${PDI}`);
    expect(isolate(`a${FSI}אבג${PDI}b${PDI}`)).toBe(`${FSI}a${FSI}אבג${PDI}b${PDI}`);
  });

  it('isolates each paragraph of a text that holds a paragraph separator', () => {
    // A paragraph separator (bidi class B: U+2029, NEL, U+001C-U+001E, CR, LF) ends every
    // isolate and override open before it: without an isolate of its own, an RLO after it
    // reversed the rest of the sentence (Chromium: `“x\u2029\u202eevil” was deleted`).
    expect(isolate('x\u2029\u202eevil')).toBe(`${FSI}x\u2029${FSI}\u202eevil${PDI}`);
    expect(isolate('x\u0085\u001c\u202eevil')).toBe(`${FSI}x\u0085\u001c${FSI}\u202eevil${PDI}`);
    // CR LF is one separator: the new isolate after both.
    expect(isolate('a\r\n\u202eb')).toBe(`${FSI}a\r\n${FSI}\u202eb${PDI}`);
    // An isolate opened before a separator is closed by it; one after, by us; one ending the text.
    expect(isolate('\u2067א\u2029b\u2066c')).toBe(`${FSI}\u2067א\u2029${FSI}b\u2066c${PDI}${PDI}`);
    expect(isolate('א\u2029')).toBe(`${FSI}א\u2029${FSI}${PDI}`);
    // A stray PDI after a separator is still dropped.
    expect(isolate(`א\u2029${PDI}b`)).toBe(`${FSI}א\u2029${FSI}b${PDI}`);
    // Left-to-right paragraphs reorder nothing: as they were.
    expect(isolate('one\u2029two')).toBe('one\u2029two');
  });

  it('keeps a long hostile text whole: stray PDIs dropped, each isolate closed once', () => {
    const hostile = `${PDI.repeat(5000)}${'\u2067'.repeat(300)}א\u202e${'\ud800'}`;
    const out = isolate(hostile);
    expect(out.startsWith(FSI)).toBe(true);
    expect([...out].filter((c) => c === PDI).length).toBe(301);
    expect([...out].filter((c) => c === '\u2067' || c === FSI).length).toBe(301);
  });
});

const list = (id: string, name: string): TodoList => ({
  id,
  name,
  role: 'OWNER',
  isDefault: false,
  members: [],
});
const noCommands = {} as Commands;

describe('people’s text in the page', () => {
  it('is a <bdi> where it is a node of its own, isolated in the labels that quote it', () => {
    const row = (title: string) =>
      renderToStaticMarkup(
        createElement(TodoItem, {
          todo: { id: 't', title, completed: false },
          editing: false,
          onEdit: () => {},
          commands: noCommands,
          moveTargets: [list('w', 'work')],
          onMove: () => {},
        }),
      );
    const rtl = row(HEBREW);
    expect(rtl).toContain(`<bdi>${HEBREW}</bdi>`);
    for (const name of ['Toggle', 'Delete', 'Move']) {
      expect(rtl).toContain(`aria-label="${name} &quot;${FSI}${HEBREW}${PDI}&quot;"`);
    }
    // A left-to-right title's names are as they were (tests and assistive technology
    // find the row's controls by them).
    const ltr = row('draft');
    expect(ltr).toContain('<bdi>draft</bdi>');
    expect(ltr).toContain('aria-label="Delete &quot;draft&quot;"');
  });

  it('is isolated in a list’s option, which cannot hold a <bdi>', () => {
    const lists = [list('h', 'Todos'), list('w', HEBREW)];
    const html = renderToStaticMarkup(
      createElement(ListSwitcher, {
        lists,
        shown: lists[0],
        onPick: () => {},
        onCreate: async () => true,
        onRename: async () => true,
        onDelete: async () => true,
      }),
    );
    expect(html).toContain(`>${FSI}${HEBREW}${PDI} (yours)</option>`);
    expect(html).toContain('>Todos (yours)</option>');
  });
});
