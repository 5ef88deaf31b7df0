// Who a list is shared with: its members; for its owner a form to share it (username,
// role), each member's role to change and a button to remove them; for anyone else a
// button to leave it.
import { useState, type FormEvent } from 'react';
import { isolate } from './bidi';
import type { Member, Role, TodoList } from './lists';

interface Props {
  list: TodoList;
  onShare(username: string, role: Role): Promise<boolean>;
  onRemove(member: Member): Promise<boolean>;
  onRole(member: Member, role: Role): Promise<boolean>;
  onLeave(): Promise<boolean>;
}

export function ShareDialog({ list, onShare, onRemove, onRole, onLeave }: Props) {
  const [open, setOpen] = useState(false);
  const owner = list.role === 'OWNER';

  const share = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const username = String(data.get('username')).trim();
    if (username && (await onShare(username, data.get('role') as Role))) form.reset();
  };

  return (
    <section className="share" aria-label="Sharing">
      <button
        type="button"
        className="share-toggle"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
      >
        {owner ? 'Share' : 'Members'} ({list.members.length})
      </button>
      {open && (
        <div className="share-dialog" role="dialog" aria-label={`Sharing «${isolate(list.name)}»`}>
          <ul className="members">
            {list.members.map((m) => (
              <li key={m.person.id} data-username={m.person.username}>
                <bdi className="member-name">{m.person.username}</bdi>
                {owner && m.role !== 'OWNER' ? (
                  <select
                    className="member-role"
                    aria-label={`Role of ${isolate(m.person.username)}`}
                    value={m.role}
                    onChange={(e) => void onRole(m, e.currentTarget.value as Role)}
                  >
                    <RoleOptions />
                  </select>
                ) : (
                  <span className="member-role">{m.role.toLowerCase()}</span>
                )}
                {owner && m.role !== 'OWNER' && (
                  <button
                    type="button"
                    className="remove-member"
                    aria-label={`Remove ${isolate(m.person.username)}`}
                    onClick={() => void onRemove(m)}
                  >
                    Remove
                  </button>
                )}
              </li>
            ))}
          </ul>
          {owner && (
            <form className="share-form" onSubmit={(e) => void share(e)}>
              <input name="username" aria-label="Username" placeholder="username" required />
              <select name="role" aria-label="Role" defaultValue="EDITOR">
                <RoleOptions />
              </select>
              <button type="submit">Share</button>
            </form>
          )}
          {!owner && (
            <button type="button" className="leave-list" onClick={() => void onLeave()}>
              Leave this list
            </button>
          )}
        </div>
      )}
    </section>
  );
}

/** The roles an owner may give (a list has one owner). */
function RoleOptions() {
  return (
    <>
      <option value="EDITOR">can edit</option>
      <option value="VIEWER">can view</option>
    </>
  );
}
