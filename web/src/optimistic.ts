// Checkboxes that show a click at once, in the few milliseconds before the outbox has
// stored the edit and the page shows it from there.
import { useRef, useState } from 'react';

/**
 * A checkbox's value: what the user last clicked while its edits are being stored, else
 * `shown` (the list with the outbox's edits on top). Every click is an edit of its own,
 * queued in click order.
 */
export function useOptimisticToggle(
  shown: boolean,
  queue: (value: boolean) => Promise<boolean>,
): { checked: boolean; pending: boolean; toggle(): Promise<void> } {
  const [wanted, setWanted] = useState<boolean | null>(null);
  const storing = useRef(0);
  const checked = wanted ?? shown;
  const toggle = async () => {
    setWanted(!checked);
    storing.current += 1;
    try {
      await queue(!checked);
    } finally {
      storing.current -= 1;
      if (storing.current === 0) setWanted(null);
    }
  };
  return { checked, pending: wanted !== null, toggle };
}
