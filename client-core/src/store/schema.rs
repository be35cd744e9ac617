//! The profile database's schema, versioned with `PRAGMA user_version`: each
//! step runs in one transaction, steps are append-only, and a test checks
//! that a database migrated from every earlier version equals a fresh one.
//!
//! Items live in fixed-size cells (`store::cells`): nothing plaintext but
//! random-looking ids and sealed bytes of one length per table. The
//! `items` table of version 1 (plaintext kind and state) is read only to
//! convert a profile made before version 3, at unlock.

use rusqlite::Connection;

use crate::Result;

/// Migration steps; step `i` takes the database from version `i` to `i + 1`.
pub(crate) const STEPS: &[&str] = &[
    // 1: the key slot, and one table of encrypted items.
    "CREATE TABLE meta (
         name  TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) STRICT;
     CREATE TABLE items (
         id     BLOB    PRIMARY KEY,
         kind   INTEGER NOT NULL,
         state  INTEGER NOT NULL DEFAULT 0,
         sealed BLOB    NOT NULL
     ) STRICT;
     CREATE INDEX items_by_kind ON items (kind, state);",
    // 2: the rows read before unlock (store::throttle): wrong PINs in a row
    // and the wipe-after setting, present in every profile from the start.
    "INSERT INTO meta (name, value) VALUES ('attempts', zeroblob(12)), ('wipe_after', zeroblob(4))
         ON CONFLICT (name) DO NOTHING;",
    // 3: fixed-size cells (store::cells): every row of one length, kind,
    // state and size sealed inside. The table of step 1 stays, emptied at
    // unlock (rows cannot be converted without the key), in every profile
    // alike (see store::cells).
    "CREATE TABLE heads (
         n    INTEGER PRIMARY KEY,
         id   BLOB    NOT NULL UNIQUE,
         head BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE bodies (
         n    INTEGER PRIMARY KEY,
         body BLOB    NOT NULL
     ) STRICT;",
];

/// The version a fresh database has.
pub const CURRENT: u32 = STEPS.len() as u32;

/// Brings the database up to [`CURRENT`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let mut version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    while let Some(step) = STEPS.get(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        version += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn migrated_from_every_version_equals_fresh() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        for start in 0..CURRENT {
            let mut c = Connection::open_in_memory().unwrap();
            for (i, step) in STEPS.iter().enumerate().take(start as usize) {
                c.execute_batch(step).unwrap();
                c.pragma_update(None, "user_version", i as u32 + 1).unwrap();
            }
            migrate(&mut c).unwrap();
            assert_eq!(schema_of(&c), schema_of(&fresh), "from version {start}");
            let v: u32 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, CURRENT);
        }
        // Migrating again changes nothing.
        migrate(&mut fresh).unwrap();
    }
}
