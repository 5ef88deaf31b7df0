// Lists and sharing (AUTH=accounts): the operations the list switcher and the share dialog
// send, and the pure rules of which list is shown and what may be done in it.
import { isolate } from './bidi';
import { graphql } from './gql';
import type { ListsQuery } from './gql/graphql';
import { FATE_WORDS } from './outbox';
import type { Todo } from './todos';

export type TodoList = ListsQuery['lists'][number];
export type Member = TodoList['members'][number];
export type Role = TodoList['role'];

export const ListsQueryDocument = graphql(`
  query Lists {
    lists {
      id
      name
      isDefault
      role
      members {
        role
        person {
          id
          username
        }
      }
    }
  }
`);

export const CreateListMutation = graphql(`
  mutation CreateList($name: String!) {
    createList(input: { name: $name }) {
      id
    }
  }
`);

export const RenameListMutation = graphql(`
  mutation RenameList($id: ID!, $name: String!) {
    renameList(id: $id, name: $name) {
      id
    }
  }
`);

export const DeleteListMutation = graphql(`
  mutation DeleteList($id: ID!) {
    deleteList(id: $id) {
      id
    }
  }
`);

export const ShareListMutation = graphql(`
  mutation ShareList($id: ID!, $username: String!, $role: Role!) {
    shareList(id: $id, username: $username, role: $role) {
      role
    }
  }
`);

export const RemoveMemberMutation = graphql(`
  mutation RemoveMember($listId: ID!, $personId: ID!) {
    removeMember(listId: $listId, personId: $personId) {
      role
    }
  }
`);

export const SetMemberRoleMutation = graphql(`
  mutation SetMemberRole($listId: ID!, $personId: ID!, $role: Role!) {
    setMemberRole(listId: $listId, personId: $personId, role: $role) {
      role
    }
  }
`);

export const LeaveListMutation = graphql(`
  mutation LeaveList($id: ID!) {
    leaveList(id: $id) {
      id
    }
  }
`);

/** Whether a member in this role may change the list's todos (a viewer reads only). */
export function mayEdit(role: Role): boolean {
  return role !== 'VIEWER';
}

/** Where a row of the list shown may be moved: the person's other lists they may write in. */
export function moveTargets(lists: readonly TodoList[], shownId: string): readonly TodoList[] {
  return lists.filter((l) => l.id !== shownId && mayEdit(l.role));
}

/** The list to show: the one asked for while it is still among the lists, else the default. */
export function shownList(lists: readonly TodoList[], wanted: string | null): TodoList | null {
  return lists.find((l) => l.id === wanted) ?? lists.find((l) => l.isDefault) ?? lists[0] ?? null;
}

/** The todos of one list, in the sync's order. */
export function todosOf(todos: readonly Todo[], listId: string): readonly Todo[] {
  return todos.filter((t) => t.listId === listId);
}

/**
 * What to tell the person about lists that went away between two reads of `lists`: each
 * one they did not delete themselves, "«name» was deleted" when the feed said so, else
 * "«name» is no longer shared with you", or, when `unseen` (the page did not see it go:
 * the lists before were kept on this browser while it was closed), "«name» is no longer
 * among your lists": a deletion and an unsharing then look alike. `own` are the ids this
 * page deleted or left.
 */
export function goneMessages(
  before: readonly TodoList[],
  after: readonly TodoList[],
  own: ReadonlySet<string>,
  deleted: ReadonlySet<string> = new Set(),
  unseen = false,
): string[] {
  const still = new Set(after.map((l) => l.id));
  return before
    .filter((l) => !still.has(l.id) && !own.has(l.id))
    .map(
      (l) =>
        `«${isolate(l.name)}» ${FATE_WORDS[deleted.has(l.id) ? 'deleted' : unseen ? 'gone' : 'unshared']}`,
    );
}

/** Whether two reads of `lists` say the same (a poll that changed nothing re-renders nothing). */
export function sameLists(a: readonly TodoList[], b: readonly TodoList[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const listsKey = (personId: string) => `graphql-todos.${personId}.lists`;

/** Keeps a person's lists as last read, for a start without the server (`keptLists`). */
export function keepLists(
  personId: string,
  lists: readonly TodoList[],
  storage: Pick<Storage, 'setItem'> = localStorage,
): void {
  try {
    storage.setItem(listsKey(personId), JSON.stringify(lists));
  } catch (error) {
    console.warn('could not keep the lists', error); // as `remember` in account.ts
  }
}

/** A person's lists as last read on this browser, or null (never read, or unreadable). */
export function keptLists(
  personId: string,
  storage: Pick<Storage, 'getItem'> = localStorage,
): readonly TodoList[] | null {
  try {
    const kept: unknown = JSON.parse(storage.getItem(listsKey(personId)) ?? 'null');
    return Array.isArray(kept) ? (kept as TodoList[]) : null;
  } catch {
    return null;
  }
}
