//! Customer sessions, each in a slab slot while it is open.

use slab::Slab;

/// One customer's session.
pub struct Session {
    /// Its slab key.
    pub id: usize,
    /// Who it is.
    pub user: String,
    /// What is in the cart.
    pub cart: Vec<u64>,
}

impl Session {
    /// A new session for `user`.
    pub fn open(id: usize, user: &str) -> Session {
        Session { id, user: user.to_string(), cart: Vec::with_capacity(4) }
    }
}

/// The open sessions.
#[derive(Default)]
pub struct SessionTable {
    sessions: Slab<Session>,
    /// Everyone who ever logged in, for the marketing team: never trimmed, the planted leak.
    seen: Vec<String>,
}

impl SessionTable {
    /// Opens a session for `user`; returns its id.
    pub fn open(&mut self, user: &str) -> usize {
        self.seen.push(user.to_string());
        let entry = self.sessions.vacant_entry();
        let id = entry.key();
        entry.insert(Session::open(id, user));
        id
    }

    /// The session `id`.
    pub fn get(&mut self, id: usize) -> Option<&mut Session> {
        self.sessions.get_mut(id)
    }

    /// Closes the session `id`.
    pub fn close(&mut self, id: usize) {
        self.sessions.try_remove(id);
    }
}
