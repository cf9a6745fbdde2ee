/**
 * THREAD (RFC 5256 §2.1 ORDEREDSUBJECT, §2.2 REFERENCES) over {@link SortItem}s, and the `thread-list` wire form.
 */
import { headerValue } from './imap-mime.js';
import { baseSubject, sentDate, type SortItem } from './imap-sort.js';

/** A node of the thread tree: a message, or a dummy (no message) that only groups children. */
interface Node {
  item?: SortItem;
  parent?: Node;
  children: Node[];
}

/** Sent date of a node: its message's, else its first child's (RFC 5256 §2.2 step 4). */
function nodeDate(n: Node): [number, number] {
  if (n.item) return [sentDate(n.item), n.item.seq];
  return n.children.length > 0 ? nodeDate(n.children[0]) : [0, 0];
}

function byDate(a: Node, b: Node): number {
  const [x, xs] = nodeDate(a);
  const [y, ys] = nodeDate(b);
  return x - y || xs - ys;
}

function sortTree(nodes: Node[]): void {
  for (const n of nodes) sortTree(n.children);
  nodes.sort(byDate);
}

/** RFC 5256 §2.1 ORDEREDSUBJECT: messages grouped by base subject; the first is the parent of the others. */
export function threadOrderedSubject(items: readonly SortItem[]): string {
  const groups = new Map<string, SortItem[]>();
  const sorted = [...items].sort((a, b) => sentDate(a) - sentDate(b) || a.seq - b.seq);
  for (const item of sorted) {
    const key = baseSubject(headerValue(item.fields, 'subject')).subject.toUpperCase();
    const g = groups.get(key);
    if (g) g.push(item);
    else groups.set(key, [item]);
  }
  const roots: Node[] = [...groups.values()].map((g) => {
    const root: Node = { item: g[0], children: [] };
    root.children = g.slice(1).map((item) => ({ item, parent: root, children: [] }));
    return root;
  });
  return serialize(roots);
}

const MSGID = /<[^<>]+>/g;

function isAncestor(maybe: Node, of: Node): boolean {
  for (let n: Node | undefined = of; n; n = n.parent) if (n === maybe) return true;
  return false;
}

function link(parent: Node, child: Node): void {
  if (child.parent) child.parent.children = child.parent.children.filter((c) => c !== child);
  child.parent = parent;
  parent.children.push(child);
}

/** RFC 5256 §2.2 REFERENCES (the JWZ algorithm): parent/child links from References/In-Reply-To, then subjects. */
export function threadReferences(items: readonly SortItem[]): string {
  const byId = new Map<string, Node>();
  const node = (id: string): Node => {
    let n = byId.get(id);
    if (!n) byId.set(id, (n = { children: [] }));
    return n;
  };
  let unique = 0;
  for (const item of items) {
    // Step 1A: the message's own container (a missing or duplicate Message-ID gets a unique one).
    const own = (headerValue(item.fields, 'message-id') ?? '').match(MSGID)?.[0];
    let container = own ? node(own) : undefined;
    if (!container || container.item) container = node(`\u0000${unique++}`);
    container.item = item;
    // Step 1B: link the references in order.
    const refs = (headerValue(item.fields, 'references') ?? '').match(MSGID) ?? (headerValue(item.fields, 'in-reply-to') ?? '').match(MSGID)?.slice(0, 1) ?? [];
    let prev: Node | undefined;
    for (const ref of refs) {
      const n = node(ref);
      if (prev && !n.parent && !isAncestor(n, prev) && n !== prev) link(prev, n);
      prev = n;
    }
    // Step 1C: the last reference is the parent.
    if (container.parent) container.parent.children = container.parent.children.filter((c) => c !== container);
    container.parent = undefined;
    if (prev && prev !== container && !isAncestor(container, prev)) link(prev, container);
  }
  // Steps 2–3: the root set.
  let roots = [...byId.values()].filter((n) => !n.parent);
  // Step 4: prune dummies.
  const prune = (list: Node[], isRoot: boolean): Node[] => {
    const out: Node[] = [];
    for (const n of list) {
      n.children = prune(n.children, false);
      if (n.item) out.push(n);
      else if (n.children.length === 0) continue;
      else if (isRoot && n.children.length > 1) out.push(n);
      else for (const c of n.children) out.push(Object.assign(c, { parent: isRoot ? undefined : n.parent }));
    }
    return out;
  };
  roots = prune(roots, true);
  sortTree(roots);
  // Step 5: gather roots by base subject.
  const subjectOf = (n: Node): { subject: string; isReply: boolean } => baseSubject(headerValue((n.item ?? n.children[0].item)?.fields ?? [], 'subject'));
  const table = new Map<string, Node>();
  for (const r of roots) {
    const { subject, isReply } = subjectOf(r);
    if (subject === '') continue;
    const key = subject.toUpperCase();
    const old = table.get(key);
    if (!old || (!r.item && old.item) || (old.item && subjectOf(old).isReply && !isReply && r.item)) table.set(key, r);
  }
  for (const r of roots) {
    const { subject, isReply } = subjectOf(r);
    const c = subject === '' ? undefined : table.get(subject.toUpperCase());
    if (!c || c === r || r.parent) continue;
    if (!c.item && !r.item) for (const k of [...r.children]) link(c, k);
    else if (!c.item) link(c, r);
    else if (!r.item) {
      link(r, c);
      table.set(subject.toUpperCase(), r);
    } else if (!subjectOf(c).isReply && isReply) link(c, r);
    else {
      const dummy: Node = { children: [] };
      link(dummy, c);
      link(dummy, r);
      table.set(subject.toUpperCase(), dummy);
    }
  }
  // The new roots: the top of every old root's tree (dummies emptied by a merge drop out).
  const top = new Set<Node>();
  for (const r of roots) {
    let t = r;
    while (t.parent) t = t.parent;
    if (t.item || t.children.length > 0) top.add(t);
  }
  const merged = [...top];
  // Step 6: order every level by sent date.
  sortTree(merged);
  return serialize(merged);
}

/** RFC 5256 §4 `thread-list`s: `(a b (c)(d))`; one child follows its parent in the same list. */
export function serialize(roots: readonly Node[]): string {
  const one = (n: Node): string => {
    const members: number[] = [];
    let cur = n;
    for (;;) {
      if (cur.item) members.push(cur.item.seq);
      if (cur.children.length !== 1) break;
      cur = cur.children[0];
    }
    const nested = cur.children.length > 1 ? cur.children.map((c) => `(${one(c)})`).join('') : '';
    return [members.join(' '), nested].filter((x) => x !== '').join(' ');
  };
  return roots.map((r) => `(${one(r)})`).join('');
}
