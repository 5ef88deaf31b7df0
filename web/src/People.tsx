// The page with AUTH=accounts: who is signed in, the list switcher and the sharing of the
// list on screen, around the TodoMVC app showing that one list (read-only for a viewer).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Person } from './account';
import { App } from './App';
import { describeError, type Send } from './api';
import { isolate } from './bidi';
import { createCommands } from './commands';
import { deletedList, type ListFeedEvent } from './listFeed';
import { ListSwitcher } from './ListSwitcher';
import {
  CreateListMutation,
  DeleteListMutation,
  goneMessages,
  keepLists,
  keptLists,
  LeaveListMutation,
  ListsQueryDocument,
  mayEdit,
  moveTargets,
  RemoveMemberMutation,
  RenameListMutation,
  sameLists,
  SetMemberRoleMutation,
  ShareListMutation,
  shownList,
  type Member,
  type Role,
  type TodoList,
} from './lists';
import type { ListFate, Outbox } from './outbox';
import { ShareDialog } from './ShareDialog';
import { pluralize } from './todos';
import type { TodoSync } from './sync';

// Lists change rarely and by others (a share, an unshare, a rename): the feed's list events
// say so at once (`follow`); reading them this often as well covers a feed that is away.
export const LISTS_POLL_MS = 5_000;

interface Props {
  person: Person;
  /** The page's list with the outbox's edits on top (shown.ts). */
  sync: TodoSync;
  /** This person's outbox: the todo edits go there, the list and sharing ones `send`. */
  outbox: Outbox;
  send: Send;
  /** Subscribes to the feed's list events (listFeed.ts); returns the unsubscribe. */
  follow(onEvent: (event: ListFeedEvent | null) => void): () => void;
  onSignOut(): void;
}

export function People({ person, sync, outbox, send, follow, onSignOut }: Props) {
  // As last read on this browser, until the server answers: a reload offline shows them.
  const [lists, setLists] = useState<readonly TodoList[] | null>(() => keptLists(person.id));
  const [wanted, setWanted] = useState<string | null>(null);
  const [notices, setNotices] = useState<readonly string[]>([]);
  // Lists this page deleted or left: gone without a notice.
  const own = useRef(new Set<string>());
  // Lists the feed said were deleted by their owner (told as deleted, not as unshared).
  const deleted = useRef(new Set<string>());
  const shown = lists === null ? null : shownList(lists, wanted);
  const shownId = useRef<string | null>(null);
  shownId.current = shown?.id ?? null;
  const shownName = useRef<string | null>(null);
  shownName.current = shown?.name ?? null;
  // The todo edits of the list on screen, queued in the outbox: read at each intent, so
  // the commands follow the switcher without being made again. The page holds every list's
  // todos: the commands keep "toggle all" and "clear completed" to the list on screen.
  const commands = useMemo(
    () =>
      createCommands(outbox, () => sync.getSnapshot().list.todos, {
        listId: () => shownId.current ?? undefined,
        listName: () => shownName.current ?? undefined,
      }),
    [outbox, sync],
  );

  // The last lists read, to tell what went away since.
  const known = useRef<readonly TodoList[] | null>(lists);
  // Lists gone before this page's first read from the server (kept on this browser while it
  // was closed): it did not see them go, so it cannot tell a deletion from an unsharing.
  const unseen = useRef(new Set<string>());
  const firstRead = useRef(true);
  // Every list this page had: one it never had went before it could see.
  const everHad = useRef(new Set<string>());

  const reload = useCallback(async () => {
    try {
      const { lists: read } = await send(ListsQueryDocument);
      const before = known.current;
      const first = firstRead.current;
      firstRead.current = false;
      if (first) for (const l of before ?? []) if (!read.some((r) => r.id === l.id)) unseen.current.add(l.id);
      if (before !== null && sameLists(before, read)) return;
      known.current = read;
      setLists(read);
      keepLists(person.id, read);
      const gone = before === null ? [] : goneMessages(before, read, own.current, deleted.current, first);
      if (gone.length) setNotices((n) => [...n, ...gone]);
    } catch (error) {
      // The sync's status shows a lost connection; the next poll tries again.
      console.warn('could not read the lists', error);
    }
  }, [send, person.id]);

  useEffect(() => {
    void reload();
    const timer = setInterval(() => void reload(), LISTS_POLL_MS);
    const unfollow = follow((event) => {
      const gone = event && deletedList(event);
      if (gone) deleted.current.add(gone);
      void reload();
    });
    return () => {
      clearInterval(timer);
      unfollow();
    };
  }, [reload, follow]);

  const act = async (what: string, change: () => Promise<unknown>): Promise<boolean> => {
    try {
      await change();
      return true;
    } catch (error) {
      setNotices((n) => [...n, `Could not ${what}: ${describeError(error)}`]);
      return false;
    } finally {
      await reload();
    }
  };

  for (const l of lists ?? []) everHad.current.add(l.id);
  if (lists === null || shown === null) {
    return <p className="lists-loading">Loading your lists…</p>;
  }
  const readOnly = !mayEdit(shown.role);
  // Read at each render: the lists state changes whenever one goes. A list this page never
  // had (its edits queued before the lists kept here were) is gone, how unseen.
  const fate: ListFate = (id) =>
    lists.some((l) => l.id === id)
      ? undefined
      : deleted.current.has(id)
        ? 'deleted'
        : unseen.current.has(id) || !everHad.current.has(id)
          ? 'gone'
          : 'unshared';

  return (
    <>
      <header className="account-bar">
        <span>
          Signed in as <strong className="account-name"><bdi>{person.username}</bdi></strong>
        </span>
        <button type="button" className="sign-out" onClick={() => confirmSignOut(outbox) && onSignOut()}>
          Sign out
        </button>
      </header>
      <ListSwitcher
        lists={lists}
        shown={shown}
        onPick={setWanted}
        onCreate={(name) =>
          act('create the list', async () => {
            const made = await send(CreateListMutation, { name });
            setWanted(made.createList.id);
          })
        }
        onRename={(id, name) => act('rename the list', () => send(RenameListMutation, { id, name }))}
        onDelete={(list) =>
          window.confirm(`Delete «${isolate(list.name)}» and its todos, for everyone it is shared with?`)
            ? act('delete the list', () => {
                own.current.add(list.id);
                deleted.current.add(list.id);
                return send(DeleteListMutation, { id: list.id });
              })
            : Promise.resolve(false)
        }
      />
      <ShareDialog
        key={shown.id}
        list={shown}
        onShare={(username: string, role: Role) =>
          act('share the list', () => send(ShareListMutation, { id: shown.id, username, role }))
        }
        onRemove={(member: Member) =>
          act('remove the member', () =>
            send(RemoveMemberMutation, { listId: shown.id, personId: member.person.id }),
          )
        }
        onRole={(member: Member, role: Role) =>
          act('change the role', () =>
            send(SetMemberRoleMutation, { listId: shown.id, personId: member.person.id, role }),
          )
        }
        onLeave={() =>
          window.confirm(`Leave «${isolate(shown.name)}»? Its owner can share it with you again.`)
            ? act('leave the list', () => {
                own.current.add(shown.id);
                return send(LeaveListMutation, { id: shown.id });
              })
            : Promise.resolve(false)
        }
      />
      {notices.map((notice, i) => (
        <div key={i} className="list-notice" role="alert">
          <span>{notice}</span>
          <button
            type="button"
            className="error-dismiss"
            aria-label="Dismiss"
            onClick={() => setNotices((n) => n.filter((_, j) => j !== i))}
          >
            ×
          </button>
        </div>
      ))}
      <App
        sync={sync}
        commands={commands}
        outbox={outbox}
        listId={shown.id}
        readOnly={readOnly}
        moveTargets={moveTargets(lists, shown.id)}
        listFate={fate}
      />
    </>
  );
}

// Edits still waiting are kept for this person's next sign-in on this browser, not sent
// meanwhile: someone signing out of a borrowed computer must know, and may stay to send them.
function confirmSignOut(outbox: Outbox): boolean {
  const waiting = outbox.getSnapshot().queued.length;
  return (
    waiting === 0 ||
    window.confirm(
      `${waiting} ${pluralize(waiting, 'change')} not sent yet: kept on this browser until you sign in here again. Sign out anyway?`,
    )
  );
}
