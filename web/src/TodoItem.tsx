import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { deleteTodo, renameTodo, setCompleted } from './commands';
import { normalizeTitle, type Todo } from './todos';

interface Props {
  todo: Todo;
  editing: boolean;
  onEdit(id: string | null): void;
}

export function TodoItem({ todo, editing, onEdit }: Props) {
  const [draft, setDraft] = useState(todo.title);
  const input = useRef<HTMLInputElement>(null);
  // Enter and Escape end editing, and the blur that may follow when the field unmounts
  // must neither save twice nor save what Escape cancelled.
  const finished = useRef(false);

  useEffect(() => {
    if (editing) input.current?.focus();
  }, [editing]);

  const startEditing = () => {
    finished.current = false;
    setDraft(todo.title);
    onEdit(todo.id);
  };

  const save = () => {
    if (finished.current) return;
    finished.current = true;
    const title = normalizeTitle(draft);
    if (title === null) deleteTodo(todo.id);
    else if (title !== todo.title) renameTodo(todo.id, title);
    onEdit(null);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === 'Enter') {
      save();
    } else if (event.key === 'Escape') {
      finished.current = true;
      setDraft(todo.title);
      onEdit(null);
    }
  };

  const classes = [todo.completed && 'completed', editing && 'editing'].filter(Boolean);

  return (
    <li className={classes.join(' ') || undefined} data-id={todo.id}>
      <div className="view">
        <input
          className="toggle"
          type="checkbox"
          checked={todo.completed}
          onChange={(e) => setCompleted(todo.id, e.target.checked)}
        />
        <label onDoubleClick={startEditing}>{todo.title}</label>
        <button className="destroy" onClick={() => deleteTodo(todo.id)} />
      </div>
      {editing && (
        <input
          ref={input}
          className="edit"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
          onBlur={save}
        />
      )}
    </li>
  );
}
