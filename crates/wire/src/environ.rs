//! The request's environ (CGI variables and mod_wsgi's own keys) packed into one string:
//! built from Apache's tables, sent to a daemon and read back there without a heap
//! allocation per variable (each was two Strings, ~100 allocations per request).

use std::fmt;

/// Variables in order, each a key and a value held in one shared string.
#[derive(Clone, Default)]
pub struct Environ {
    text: String,
    /// Per variable: where its key starts, where the key ends (and the value starts),
    /// where the value ends. A removed variable leaves its text unused.
    spans: Vec<[usize; 3]>,
}

impl Environ {
    pub fn new() -> Self {
        Environ::default()
    }

    /// Room for `vars` variables of `bytes` characters in all.
    pub fn with_capacity(vars: usize, bytes: usize) -> Self {
        Environ {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(vars),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends a variable whose value `write_value` appends to the given string (it must
    /// only append). No check for an existing variable of that name: see `set`.
    pub fn push_with(&mut self, key: &str, write_value: impl FnOnce(&mut String)) {
        let start = self.text.len();
        self.text.push_str(key);
        let mid = self.text.len();
        write_value(&mut self.text);
        self.spans.push([start, mid, self.text.len()]);
    }

    /// Appends a variable (no check for an existing one of that name: see `set`).
    pub fn push(&mut self, key: &str, value: &str) {
        self.push_with(key, |text| text.push_str(value));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|&(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`: any variable of that name is removed, then it is appended.
    pub fn set(&mut self, key: &str, value: &str) {
        self.remove(key);
        self.push(key, value);
    }

    /// Removes every variable called `key`.
    pub fn remove(&mut self, key: &str) {
        self.retain(|k| k != key);
    }

    /// Keeps only the variables whose key `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let text = &self.text;
        self.spans
            .retain(|&[start, mid, _]| keep(&text[start..mid]));
    }

    /// The variables in order, as (key, value).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|&[start, mid, end]| (&self.text[start..mid], &self.text[mid..end]))
    }
}

impl PartialEq for Environ {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Environ {}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut environ = Environ::new();
        for (k, v) in pairs {
            environ.push(k.as_ref(), v.as_ref());
        }
        environ
    }
}

#[cfg(test)]
mod tests {
    use super::Environ;

    #[test]
    fn set_replaces_every_copy_and_remove_drops_them() {
        let mut env: Environ = [("A", "1"), ("B", "2"), ("A", "3")].into_iter().collect();
        env.set("B", "two");
        env.set("C", "new");
        assert_eq!(env.get("B"), Some("two"));
        assert_eq!(
            env.iter().collect::<Vec<_>>(),
            [("A", "1"), ("A", "3"), ("B", "two"), ("C", "new")]
        );
        env.set("A", "one");
        assert_eq!(env.get("A"), Some("one"));
        env.remove("A");
        assert_eq!(env.iter().collect::<Vec<_>>(), [("B", "two"), ("C", "new")]);
        assert_eq!(env.get("A"), None);
    }

    #[test]
    fn equality_ignores_replaced_text() {
        let mut a: Environ = [("K", "old")].into_iter().collect();
        a.set("K", "v");
        let b: Environ = [("K", "v")].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, Environ::new());
    }

    #[test]
    fn push_with_writes_the_value_in_place() {
        let mut env = Environ::with_capacity(1, 16);
        env.push_with("KEY", |s| s.extend(['é', '!']));
        assert_eq!(env.get("KEY"), Some("é!"));
        assert_eq!(env.len(), 1);
    }
}
