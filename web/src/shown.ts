// The page's list: the sync engine's (or, before its first load, the last one this
// profile saw) with the outbox's pending edits on top. Same shape as TodoSync, so the
// page reads it as it reads the sync engine.
import type { Outbox } from './outbox';
import { pendingEdits } from './outbox';
import { overlay } from './overlay';
import type { TodoSync } from './sync';
import type { SyncState } from './machine';
import type { TodoState } from './todos';

export function showWithOutbox(
  sync: TodoSync,
  outbox: Outbox,
  stored: TodoState | null,
  save: (list: TodoState) => void,
): TodoSync {
  let shown: SyncState | null = null;
  let from: [SyncState, ReturnType<Outbox['getSnapshot']>] | null = null;
  let saved = stored;

  const getSnapshot = (): SyncState => {
    const state = sync.getSnapshot();
    const edits = outbox.getSnapshot();
    if (shown !== null && from?.[0] === state && from[1] === edits) return shown;
    const list = state.list.cursor === null && stored !== null ? stored : state.list;
    const todos = overlay(list.todos, pendingEdits(edits, list.cursor));
    shown = { ...state, list: { todos, cursor: list.cursor } };
    from = [state, edits];
    return shown;
  };

  // Every list the engine shows is kept for an offline reload.
  const keep = sync.subscribe(() => {
    const { list } = sync.getSnapshot();
    if (list.cursor === null || list === saved) return;
    saved = list;
    save(list);
  });

  return {
    getSnapshot,
    subscribe(listener) {
      const offSync = sync.subscribe(listener);
      const offOutbox = outbox.subscribe(listener);
      return () => {
        offSync();
        offOutbox();
      };
    },
    stop() {
      keep();
      sync.stop();
      outbox.stop();
    },
  };
}
