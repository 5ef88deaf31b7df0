// Checkboxes that show a click at once, before the server's event confirms it.
import { useEffect, useRef, useState } from 'react';

// How long a checkbox shows its clicked value after the server accepted it without the
// event confirming it; after that the server's value rules again (e.g. another tab
// toggled it back).
const CONFIRM_MS = 3_000;

export interface LatestSender<T> {
  /**
   * Sends `value` unless a send is in flight; then it is sent once that one is done, in
   * its place any value asked for meanwhile, so the last value asked for is the last one
   * the server gets, and in order. Resolves with the last send's outcome from the call
   * that sent, and null from a call whose value an earlier call sends.
   */
  send(value: T, transport: (value: T) => Promise<boolean>): Promise<boolean | null>;
  busy(): boolean;
}

export function latestSender<T>(): LatestSender<T> {
  let wanted: T;
  let sending = false;
  return {
    async send(value, transport) {
      wanted = value;
      if (sending) return null;
      sending = true;
      try {
        let sent: T;
        let ok: boolean;
        do {
          sent = wanted;
          ok = await transport(sent);
        } while (ok && wanted !== sent);
        return ok;
      } finally {
        sending = false;
      }
    },
    busy: () => sending,
  };
}

/**
 * A checkbox's value: what the user last clicked until the server confirms it, else the
 * server's `confirmed` value. Every click counts: a second click while the first is in
 * flight shows at once and is sent after it. A failed send (already reported by the
 * command) shows the server's value again.
 */
export function useOptimisticToggle(
  confirmed: boolean,
  transport: (value: boolean) => Promise<boolean>,
): { checked: boolean; pending: boolean; toggle(): Promise<void> } {
  const [wanted, setWanted] = useState<boolean | null>(null);
  const sender = useRef(latestSender<boolean>()).current;
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  // The server's value as of now, and the last value clicked, for a send that
  // resolves after its event came.
  const latest = useRef(confirmed);
  latest.current = confirmed;
  const clicked = useRef(confirmed);

  // While sends are in flight an event matching the click may be the echo of an older
  // click; only once they are done does the server's value confirm the last one.
  useEffect(() => {
    if (wanted !== null && confirmed === wanted && !sender.busy()) setWanted(null);
  }, [confirmed, wanted, sender]);

  useEffect(() => () => clearTimeout(timer.current), []);

  const checked = wanted ?? confirmed;
  const toggle = async () => {
    clearTimeout(timer.current);
    setWanted(!checked);
    clicked.current = !checked;
    const ok = await sender.send(!checked, transport);
    if (ok === null) return;
    // The event usually comes before the HTTP response, while the send was still busy
    // and could not confirm it: confirm now, or a stale click would outlive the next
    // change made elsewhere (toggle-all, another tab) and send the wrong value.
    if (ok && latest.current !== clicked.current) timer.current = setTimeout(() => setWanted(null), CONFIRM_MS);
    else setWanted(null);
  };
  return { checked, pending: wanted !== null, toggle };
}
