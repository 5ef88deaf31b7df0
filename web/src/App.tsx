import { useEffect, useState, useSyncExternalStore, type KeyboardEvent } from 'react';
import { clearCompleted, createTodo, toggleAll } from './commands';
import type { ConnectionState, TodoSync } from './sync';
import { TodoItem } from './TodoItem';
import {
  countTodos,
  filterFromHash,
  normalizeTitle,
  pluralize,
  visibleTodos,
  type Filter,
} from './todos';

const FILTERS: readonly { filter: Filter; href: string; label: string }[] = [
  { filter: 'all', href: '#/', label: 'All' },
  { filter: 'active', href: '#/active', label: 'Active' },
  { filter: 'completed', href: '#/completed', label: 'Completed' },
];

const STATUS_TEXT: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Reconnecting…',
};

function useHashFilter(): Filter {
  const [filter, setFilter] = useState(() => filterFromHash(window.location.hash));
  useEffect(() => {
    const onHashChange = () => setFilter(filterFromHash(window.location.hash));
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);
  return filter;
}

export function App({ sync }: { sync: TodoSync }) {
  const { state, connection } = useSyncExternalStore(sync.subscribe, sync.getSnapshot);
  const filter = useHashFilter();
  const [editingId, setEditingId] = useState<string | null>(null);
  const counts = countTodos(state.todos);

  const onNewTodoKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key !== 'Enter') return;
    const title = normalizeTitle(event.currentTarget.value);
    if (title === null) return;
    createTodo(title);
    event.currentTarget.value = '';
  };

  return (
    <>
      <section className="todoapp">
        <header className="header">
          <h1>todos</h1>
          <input
            className="new-todo"
            placeholder="What needs to be done?"
            autoFocus
            onKeyDown={onNewTodoKeyDown}
          />
        </header>
        {counts.total > 0 && (
          <section className="main">
            <input
              id="toggle-all"
              className="toggle-all"
              type="checkbox"
              checked={counts.active === 0}
              onChange={(e) => toggleAll(e.target.checked)}
            />
            <label htmlFor="toggle-all">Mark all as complete</label>
            <ul className="todo-list">
              {visibleTodos(state.todos, filter).map((todo) => (
                <TodoItem
                  key={todo.id}
                  todo={todo}
                  editing={todo.id === editingId}
                  onEdit={setEditingId}
                />
              ))}
            </ul>
          </section>
        )}
        {counts.total > 0 && (
          <footer className="footer">
            <span className="todo-count">
              <strong>{counts.active}</strong> {pluralize(counts.active, 'item')} left
            </span>
            <ul className="filters">
              {FILTERS.map((f) => (
                <li key={f.filter}>
                  <a href={f.href} className={f.filter === filter ? 'selected' : undefined}>
                    {f.label}
                  </a>
                </li>
              ))}
            </ul>
            {counts.completed > 0 && (
              <button className="clear-completed" onClick={clearCompleted}>
                Clear completed
              </button>
            )}
          </footer>
        )}
      </section>
      <footer className="info">
        <div className="connection-status" data-state={connection} role="status">
          {STATUS_TEXT[connection]}
        </div>
        <p>Double-click to edit a todo</p>
        <p>
          Part of TodoMVC · <a href="/graphql">GraphiQL</a>
        </p>
      </footer>
    </>
  );
}
