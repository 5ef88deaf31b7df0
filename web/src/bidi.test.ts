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
