// The list switcher (AUTH=accounts): pick the list on screen, make a new one, rename or
// delete the one shown (as the caller's role allows).
import { useState, type KeyboardEvent } from 'react';
import { isolate } from './bidi';
import { mayEdit, type TodoList } from './lists';

interface Props {
  lists: readonly TodoList[];
  shown: TodoList;
  onPick(id: string): void;
  onCreate(name: string): Promise<boolean>;
  onRename(id: string, name: string): Promise<boolean>;
  onDelete(list: TodoList): Promise<boolean>;
}

const ROLE_TEXT = { OWNER: 'yours', EDITOR: 'shared: you edit', VIEWER: 'shared: read only' } as const;

export function ListSwitcher({ lists, shown, onPick, onCreate, onRename, onDelete }: Props) {
  const [renaming, setRenaming] = useState(false);

  // Enter submits a non-blank name; the field empties (or closes) once the server took it.
  const onNameKeyDown = async (
    event: KeyboardEvent<HTMLInputElement>,
    save: (name: string) => Promise<boolean>,
  ) => {
    if (event.key === 'Escape') setRenaming(false);
    if (event.key !== 'Enter' || event.nativeEvent.isComposing) return;
    const input = event.currentTarget;
    const name = input.value.trim();
    if (name && (await save(name))) input.value = '';
  };

  return (
    <nav className="list-switcher" aria-label="Lists">
      <select
        className="list-select"
        aria-label="List"
        value={shown.id}
        onChange={(e) => {
          setRenaming(false);
          onPick(e.target.value);
        }}
      >
        {lists.map((l) => (
          <option key={l.id} value={l.id}>
            {`${isolate(l.name)} (${ROLE_TEXT[l.role]})`}
          </option>
        ))}
      </select>
      {renaming ? (
        <input
          className="rename-list"
          dir="auto"
          aria-label="New name"
          defaultValue={shown.name}
          autoFocus
          onBlur={() => setRenaming(false)}
          onKeyDown={(e) =>
            void onNameKeyDown(e, async (name) => {
              const ok = await onRename(shown.id, name);
              if (ok) setRenaming(false);
              return ok;
            })
          }
        />
      ) : (
        <>
          {mayEdit(shown.role) && (
            <button type="button" className="rename-list-button" onClick={() => setRenaming(true)}>
              Rename
            </button>
          )}
          {shown.role === 'OWNER' && !shown.isDefault && (
            <button type="button" className="delete-list" onClick={() => void onDelete(shown)}>
              Delete
            </button>
          )}
        </>
      )}
      <input
        className="new-list"
        dir="auto"
        aria-label="New list"
        placeholder="New list…"
        maxLength={200}
        onKeyDown={(e) => void onNameKeyDown(e, onCreate)}
      />
    </nav>
  );
}
