//! State kept per name (device, interface, CPU, mount point) across collections.

/// Names read from a file on every collection, each with state of type `T`.
///
/// Looking up a known name allocates nothing: the entry after the one found last is tried
/// first (files such as /proc/net/dev list their names in the same order every time), then
/// the list is searched. Only a new name is copied. Names not seen in a collection are dropped
/// by [`Known::sweep`], so devices that come and go do not grow the list forever.
#[derive(Debug)]
pub struct Known<T> {
    entries: Vec<Entry<T>>,
    round: u32,
    next: usize,
}

#[derive(Debug)]
pub struct Entry<T> {
    pub name: Box<str>,
    pub state: T,
    round: u32,
}

impl<T> Default for Known<T> {
    fn default() -> Self {
        Known {
            entries: Vec::new(),
            round: 0,
            next: 0,
        }
    }
}

impl<T> Known<T> {
    /// Starts a collection: names looked up from now on count as seen in it.
    pub fn begin(&mut self) {
        self.round = self.round.wrapping_add(1);
        self.next = 0;
    }

    /// The index of `name`, creating its state with `make` if it is new.
    ///
    /// The flag is `false` when the name was already looked up in this collection
    /// (a duplicate line).
    pub fn find_or_insert(&mut self, name: &str, make: impl FnOnce(&str) -> T) -> (usize, bool) {
        let hint = self.next;
        let index = match self.entries.get(hint) {
            Some(e) if &*e.name == name => hint,
            _ => match self.entries.iter().position(|e| &*e.name == name) {
                Some(i) => i,
                None => {
                    self.entries.push(Entry {
                        name: name.into(),
                        state: make(name),
                        round: self.round.wrapping_sub(1),
                    });
                    self.entries.len() - 1
                }
            },
        };
        self.next = index + 1;
        let e = &mut self.entries[index];
        let first = e.round != self.round;
        e.round = self.round;
        (index, first)
    }

    pub fn get(&self, index: usize) -> &Entry<T> {
        &self.entries[index]
    }

    pub fn get_mut(&mut self, index: usize) -> &mut Entry<T> {
        &mut self.entries[index]
    }

    /// Drops the names not seen since [`Known::begin`]; indices given out before are void.
    pub fn sweep(&mut self) {
        let round = self.round;
        self.entries.retain(|e| e.round == round);
    }

    /// Entries seen in the current collection, oldest name first.
    pub fn seen(&self) -> impl Iterator<Item = &Entry<T>> {
        self.entries.iter().filter(move |e| e.round == self.round)
    }

    /// Like [`Known::seen`], with each entry's index for [`Known::get`].
    pub fn seen_indexed(&self) -> impl Iterator<Item = (usize, &Entry<T>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.round == self.round)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_keep_their_state_and_new_ones_are_made_once() {
        let mut k: Known<u32> = Known::default();
        let mut made = 0;
        k.begin();
        let (a, first) = k.find_or_insert("eth0", |_| {
            made += 1;
            7
        });
        assert!(first);
        k.get_mut(a).state += 1;
        k.sweep();
        k.begin();
        let (b, first) = k.find_or_insert("eth0", |_| unreachable!());
        assert!(first);
        assert_eq!((a, k.get(b).state, made), (b, 8, 1));
        let (_, again) = k.find_or_insert("eth0", |_| unreachable!());
        assert!(!again, "a second sighting in one collection is flagged");
    }

    #[test]
    fn names_not_seen_are_swept() {
        let mut k: Known<()> = Known::default();
        k.begin();
        k.find_or_insert("a", |_| ());
        k.find_or_insert("b", |_| ());
        k.sweep();
        k.begin();
        // Out of order: found by search.
        k.find_or_insert("b", |_| ());
        assert_eq!(k.seen().map(|e| &*e.name).collect::<Vec<_>>(), ["b"]);
        k.sweep();
        assert_eq!(k.len(), 1);
        assert_eq!(&*k.get(0).name, "b");
    }
}
