/**
 * --list-hosts, --list-tasks, --list-tags: what a run would do, read from the validated
 * inventory and playbook only (nothing is contacted). The layout follows ansible-playbook's.
 */
import type { Inventory } from '../config/inventory.js';
import type { Playbook } from '../config/playbook.js';
import { playHosts, taskSelected, type Selection } from '../core/preflight.js';

export function listHosts(book: Playbook, inv: Inventory, sel: Selection): string {
  const out = [`playbook: ${book.file}`, ''];
  book.plays.forEach((play, i) => {
    const hosts = playHosts(inv, play, sel);
    out.push(`  play #${i + 1} (${[play.hosts].flat().join(',')}): ${play.name}\tTAGS: [${play.tags.join(', ')}]`);
    out.push(`    pattern: ${JSON.stringify([play.hosts].flat())}`);
    out.push(`    hosts (${hosts.length}):`);
    for (const h of hosts) out.push(`      ${h}`);
    out.push('');
  });
  return out.join('\n') + '\n';
}

export function listTasks(book: Playbook, sel: Selection): string {
  const out = [`playbook: ${book.file}`, ''];
  book.plays.forEach((play, i) => {
    out.push(`  play #${i + 1} (${[play.hosts].flat().join(',')}): ${play.name}\tTAGS: [${play.tags.join(', ')}]`);
    out.push('    tasks:');
    for (const t of play.tasks) {
      if (!taskSelected(t, play, sel)) continue;
      out.push(`      ${t.name}\tTAGS: [${[...new Set([...play.tags, ...t.tags])].join(', ')}]`);
    }
    if (play.handlers.length) {
      out.push('    handlers:');
      for (const h of play.handlers) out.push(`      ${h.name}`);
    }
    out.push('');
  });
  return out.join('\n') + '\n';
}

export function listTags(book: Playbook, sel: Selection): string {
  const out = [`playbook: ${book.file}`, ''];
  book.plays.forEach((play, i) => {
    const tags = new Set(play.tags);
    for (const t of play.tasks) if (taskSelected(t, play, sel)) for (const tag of t.tags) tags.add(tag);
    out.push(`  play #${i + 1} (${[play.hosts].flat().join(',')}): ${play.name}\tTAGS: [${play.tags.join(', ')}]`);
    out.push(`      TASK TAGS: [${[...tags].sort().join(', ')}]`);
    out.push('');
  });
  return out.join('\n') + '\n';
}
