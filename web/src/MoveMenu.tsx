// A row's move control (AUTH=accounts): a menu button, named for its row, whose menu
// lists the person's other lists they may write in. The WAI-ARIA menu button pattern:
// Enter, Space or ArrowDown opens it on the first list, ArrowUp on the last; the arrows,
// Home and End move, Enter picks, Escape closes it back on the button, Tab leaves it.
import { useEffect, useId, useRef, useState, type FocusEvent, type KeyboardEvent } from 'react';
import { isolate } from './bidi';
import type { TodoList } from './lists';

interface Props {
  title: string;
  targets: readonly TodoList[];
  onMove(list: TodoList): void;
}

export function MoveMenu({ title, targets, onMove }: Props) {
  // The list focused while the menu is open; null when it is closed.
  const [at, setAt] = useState<number | null>(null);
  const button = useRef<HTMLButtonElement>(null);
  const items = useRef<(HTMLButtonElement | null)[]>([]);
  const menuId = useId();
  const last = targets.length - 1;

  useEffect(() => {
    if (at !== null) items.current[at]?.focus();
  }, [at]);

  // A list gone while the menu is open (deleted or unshared elsewhere) took the focus with
  // its item: the item now in its place (or the last) takes it, not <body>.
  useEffect(() => {
    if (at === null || document.activeElement !== document.body) return;
    if (at > last) setAt(last);
    else items.current[at]?.focus();
  }, [last]);

  const onButtonKeyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    const to = { ArrowDown: 0, ArrowUp: last }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    setAt(to);
  };

  const onMenuKeyDown = (event: KeyboardEvent<HTMLUListElement>) => {
    if (at === null) return;
    if (event.key === 'Tab') {
      setAt(null);
      return;
    }
    const to = {
      ArrowDown: at === last ? 0 : at + 1,
      ArrowUp: at === 0 ? last : at - 1,
      Home: 0,
      End: last,
    }[event.key];
    if (to !== undefined) setAt(to);
    else if (event.key === 'Escape') {
      setAt(null);
      button.current?.focus();
    } else return;
    event.preventDefault();
  };

  // Focus gone elsewhere (a click outside, another window): the menu closes.
  const onBlur = (event: FocusEvent<HTMLDivElement>) => {
    if (!event.currentTarget.contains(event.relatedTarget)) setAt(null);
  };

  return (
    <div className="move-menu" onBlur={onBlur}>
      <button
        ref={button}
        type="button"
        className="move"
        aria-label={`Move "${isolate(title)}"`}
        aria-haspopup="menu"
        aria-expanded={at !== null}
        aria-controls={at === null ? undefined : menuId}
        onClick={() => setAt(at === null ? 0 : null)}
        onKeyDown={onButtonKeyDown}
      />
      {at !== null && (
        <ul id={menuId} role="menu" aria-label={`Move "${isolate(title)}" to`} onKeyDown={onMenuKeyDown}>
          {targets.map((list, i) => (
            <li key={list.id} role="none">
              <button
                ref={(item) => {
                  items.current[i] = item;
                }}
                type="button"
                role="menuitem"
                tabIndex={-1}
                onClick={(event) => {
                  if (event.detail === 1) swallowSecondClick();
                  // Focus on the button, not lost to <body> with the menu (the page
                  // moves it on when the row leaves).
                  button.current?.focus();
                  setAt(null);
                  onMove(list);
                }}
              >
                <bdi>{list.name}</bdi>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// A double-click on an item: its first click moves the row and closes the menu, and its
// second would land on what was under the menu (the row below: its editor opened, its
// checkbox toggled). Within the double-click time, that second click goes nowhere.
const SECOND_CLICK_MS = 500;

function swallowSecondClick() {
  const swallow = (event: MouseEvent) => {
    if (event.detail < 2) return;
    event.stopPropagation();
    event.preventDefault();
  };
  for (const type of ['click', 'dblclick'] as const) window.addEventListener(type, swallow, true);
  setTimeout(() => {
    for (const type of ['click', 'dblclick'] as const) window.removeEventListener(type, swallow, true);
  }, SECOND_CLICK_MS);
}
