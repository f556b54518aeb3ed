//! A persistent ordered map (a B+tree of shared nodes) for what a signed zone keeps in
//! order: NSEC3 hashes, or names in canonical order for NSEC. Unsigned zones have none.
//!
//! Written here rather than taken from `imbl::OrdMap` because answers look up the entry at
//! or before a key (the NSEC3 or NSEC that covers a name) and `OrdMap`'s range cursor
//! allocates; `floor` here walks the tree on the stack. Cloning is O(1) and an edit copies the
//! nodes on its path, so each zone change costs what it touches. Nodes are never merged: a
//! node emptied by removals goes, a thin one stays (the depth stays that of the largest size).

use std::borrow::Borrow;
use std::sync::Arc;

/// Entries per node before it splits.
const MAX: usize = 64;

enum Node<K, V> {
    Leaf(Vec<(K, V)>),
    /// Each child with the smallest key below it.
    Inner(Vec<(K, Arc<Self>)>),
}

impl<K: Clone, V: Clone> Clone for Node<K, V> {
    fn clone(&self) -> Self {
        match self {
            Self::Leaf(e) => Self::Leaf(e.clone()),
            Self::Inner(c) => Self::Inner(c.clone()),
        }
    }
}

pub struct Ordered<K, V> {
    root: Option<Arc<Node<K, V>>>,
    len: usize,
}

impl<K, V> Clone for Ordered<K, V> {
    fn clone(&self) -> Self {
        Self {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Self { root: None, len: 0 }
    }
}

impl<K: Ord + Clone, V: Clone> Ordered<K, V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.floor(key).filter(|(k, _)| (*k).borrow() == key).map(|(_, v)| v)
    }

    /// The entry with the greatest key not above `key`. Allocates nothing.
    pub fn floor<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.last_where(|k| k.borrow() <= key)
    }

    /// The entry with the greatest key below `key`, else the last one: the entry before
    /// `key` in a circular chain.
    pub fn before<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.last_where(|k| k.borrow() < key).or_else(|| self.last())
    }

    /// The last entry whose key `at_or_before` accepts, for a predicate that holds for a
    /// prefix of the keys in order (keys at or before some target). Allocates nothing.
    pub fn last_where(&self, at_or_before: impl Fn(&K) -> bool) -> Option<(&K, &V)> {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Inner(children) => {
                    let i = children.partition_point(|(k, _)| at_or_before(k));
                    node = &children.get(i.checked_sub(1)?)?.1;
                }
                Node::Leaf(entries) => {
                    let i = entries.partition_point(|(k, _)| at_or_before(k));
                    return entries.get(i.checked_sub(1)?).map(|(k, v)| (k, v));
                }
            }
        }
    }

    /// The entry with the greatest key. Allocates nothing.
    pub fn last(&self) -> Option<(&K, &V)> {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Inner(children) => node = &children.last()?.1,
                Node::Leaf(entries) => return entries.last().map(|(k, v)| (k, v)),
            }
        }
    }

    /// The entry at or before `key`, else the last one: the covering entry of a circular
    /// chain (NSEC, NSEC3). Allocates nothing.
    pub fn covering<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.floor(key).or_else(|| self.last())
    }

    /// The entry after `key` (strictly), else the first one: the next entry of a circular
    /// chain.
    pub fn after<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.iter_from(key)
            .find(|(k, _)| (*k).borrow() > key)
            .or_else(|| self.iter().next())
    }

    /// Entries in order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            stack: self.root.as_deref().map(|n| vec![(n, 0)]).unwrap_or_default(),
        }
    }

    /// Entries in order from the first at or after `key`.
    pub fn iter_from<Q: Ord + ?Sized>(&self, key: &Q) -> Iter<'_, K, V>
    where
        K: Borrow<Q>,
    {
        let mut stack = Vec::new();
        let mut node = self.root.as_deref();
        while let Some(n) = node {
            match n {
                Node::Inner(children) => {
                    let i = children.partition_point(|(k, _)| k.borrow() <= key).saturating_sub(1);
                    stack.push((n, i + 1));
                    node = children.get(i).map(|c| &*c.1);
                }
                Node::Leaf(entries) => {
                    let i = entries.partition_point(|(k, _)| k.borrow() < key);
                    stack.push((n, i));
                    node = None;
                }
            }
        }
        Iter { stack }
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some(root) = &mut self.root else {
            self.root = Some(Arc::new(Node::Leaf(vec![(key, value)])));
            self.len = 1;
            return None;
        };
        let (old, split) = insert(root, key, value);
        if let Some((k, right)) = split {
            let left = root.clone();
            let first = first_key(&left).expect("a split leaves both halves full").clone();
            *root = Arc::new(Node::Inner(vec![(first, left), (k, right)]));
        }
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let root = self.root.as_mut()?;
        let removed = remove(root, key)?;
        self.len -= 1;
        // An inner root with one child gives way to it; an empty root goes.
        loop {
            match self.root.as_deref() {
                Some(Node::Inner(c)) if c.len() == 1 => self.root = Some(c[0].1.clone()),
                Some(Node::Inner(c)) if c.is_empty() => self.root = None,
                Some(Node::Leaf(e)) if e.is_empty() => self.root = None,
                _ => break,
            }
        }
        Some(removed)
    }
}

fn first_key<K, V>(node: &Node<K, V>) -> Option<&K> {
    match node {
        Node::Leaf(e) => e.first().map(|(k, _)| k),
        Node::Inner(c) => c.first().map(|(k, _)| k),
    }
}

/// Inserts below `node` (copied if shared); a node that grew past `MAX` splits and hands its
/// right half (with its smallest key) up.
#[allow(clippy::type_complexity)]
fn insert<K: Ord + Clone, V: Clone>(
    node: &mut Arc<Node<K, V>>,
    key: K,
    value: V,
) -> (Option<V>, Option<(K, Arc<Node<K, V>>)>) {
    match Arc::make_mut(node) {
        Node::Leaf(entries) => match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => (Some(std::mem::replace(&mut entries[i].1, value)), None),
            Err(i) => {
                entries.insert(i, (key, value));
                (
                    None,
                    split(entries).map(|right| (right[0].0.clone(), Arc::new(Node::Leaf(right)))),
                )
            }
        },
        Node::Inner(children) => {
            let i = children.partition_point(|(k, _)| *k <= key).saturating_sub(1);
            if key < children[i].0 {
                children[i].0 = key.clone(); // the new smallest key of the whole subtree
            }
            let (old, grown) = insert(&mut children[i].1, key, value);
            if let Some(sibling) = grown {
                children.insert(i + 1, sibling);
            }
            (
                old,
                split(children).map(|right| (right[0].0.clone(), Arc::new(Node::Inner(right)))),
            )
        }
    }
}

fn split<T>(items: &mut Vec<T>) -> Option<Vec<T>> {
    (items.len() > MAX).then(|| items.split_off(items.len() / 2))
}

/// Removes below `node` (copied if shared), dropping children left empty and keeping each
/// child's smallest key right.
fn remove<K, V, Q>(node: &mut Arc<Node<K, V>>, key: &Q) -> Option<V>
where
    K: Ord + Clone + Borrow<Q>,
    V: Clone,
    Q: Ord + ?Sized,
{
    // Look before copying: a miss leaves shared nodes shared.
    match &**node {
        Node::Leaf(entries) => {
            let i = entries.binary_search_by(|(k, _)| k.borrow().cmp(key)).ok()?;
            let Node::Leaf(entries) = Arc::make_mut(node) else {
                unreachable!()
            };
            Some(entries.remove(i).1)
        }
        Node::Inner(children) => {
            let i = children.partition_point(|(k, _)| k.borrow() <= key).checked_sub(1)?;
            let Node::Inner(children) = Arc::make_mut(node) else {
                unreachable!()
            };
            let removed = remove(&mut children[i].1, key)?;
            match first_key(&children[i].1).cloned() {
                None => {
                    children.remove(i);
                }
                Some(first) => children[i].0 = first,
            }
            Some(removed)
        }
    }
}

pub struct Iter<'a, K, V> {
    /// Nodes on the path and the next index in each.
    stack: Vec<(&'a Node<K, V>, usize)>,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (node, i) = self.stack.last_mut()?;
            match node {
                Node::Leaf(entries) => match entries.get(*i) {
                    Some((k, v)) => {
                        *i += 1;
                        return Some((k, v));
                    }
                    None => {
                        self.stack.pop();
                    }
                },
                Node::Inner(children) => match children.get(*i) {
                    Some((_, child)) => {
                        *i += 1;
                        self.stack.push((child, 0));
                    }
                    None => {
                        self.stack.pop();
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn edits_and_lookups_agree_with_a_btreemap_and_old_versions_stay() {
        let mut t: Ordered<u32, u32> = Ordered::default();
        let mut reference = BTreeMap::new();
        let mut state = 11u64;
        let mut versions = Vec::new();
        for step in 0..30_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = ((state >> 33) % 5000) as u32;
            if (state >> 62) == 0 {
                assert_eq!(t.remove(&k), reference.remove(&k), "remove {k}");
            } else {
                assert_eq!(t.insert(k, step), reference.insert(k, step), "insert {k}");
            }
            assert_eq!(t.len(), reference.len());
            if step % 5000 == 0 {
                versions.push((t.clone(), reference.clone()));
            }
        }
        for q in 0..5100u32 {
            assert_eq!(t.floor(&q), reference.range(..=q).next_back(), "floor {q}");
            assert_eq!(t.get(&q), reference.get(&q));
            let after = reference.range(q + 1..).next().or_else(|| reference.iter().next());
            assert_eq!(t.after(&q), after, "after {q}");
            assert_eq!(
                t.iter_from(&q).map(|(k, _)| *k).take(3).collect::<Vec<_>>(),
                reference.range(q..).map(|(k, _)| *k).take(3).collect::<Vec<_>>()
            );
        }
        assert!(t.iter().eq(reference.iter()));
        assert_eq!(t.last(), reference.iter().next_back());
        for (old, r) in versions {
            assert!(old.iter().eq(r.iter()), "a clone is a snapshot");
        }
        for k in 0..5000 {
            t.remove(&k);
        }
        assert!(t.is_empty() && t.root.is_none() && t.last().is_none() && t.covering(&3).is_none());
    }

    #[test]
    fn the_covering_entry_of_a_circular_chain_wraps_to_the_last() {
        let mut t: Ordered<u32, ()> = Ordered::default();
        for k in [10, 20, 30] {
            t.insert(k, ());
        }
        assert_eq!(
            t.covering(&5).map(|e| *e.0),
            Some(30),
            "before the first: the last covers"
        );
        assert_eq!(t.before(&20).map(|e| *e.0), Some(10));
        assert_eq!(
            t.before(&10).map(|e| *e.0),
            Some(30),
            "the first's predecessor is the last"
        );
        assert_eq!(t.covering(&25).map(|e| *e.0), Some(20));
        assert_eq!(t.after(&30).map(|e| *e.0), Some(10), "the last's next is the first");
    }
}
