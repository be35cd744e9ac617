//! The coordinator's regional picture: the sum of every office's month
//! tables, by region, kind of place and month, with trends.
//!
//! It keeps no trace of which office said what: rows are summed by region
//! and kind of place, cells by column, and a count that some office did not
//! say (suppressed) makes the sum a lower bound, marked so, never an
//! office's name.

use std::collections::BTreeMap;

use amparo_protocol::statistics::{Dimension, Month, MonthTable, RowKey};
use serde::Serialize;

/// A sum over offices: what they said, and whether some did not say all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The sum of what was said.
    pub known: u64,
    /// Some office suppressed its part: the true count is at least `known`.
    pub partial: bool,
}

impl Count {
    fn add(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.known = self.known.saturating_add(v),
            None => self.partial = true,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.partial {
            write!(f, "≥{}", self.known)
        } else {
            write!(f, "{}", self.known)
        }
    }
}

/// One region and kind of place in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PictureRow {
    /// Region and kind of place (both absent: other places).
    pub key: RowKey,
    /// Incidents counted (row totals are always said).
    pub total: u64,
    /// For each dimension of [`Dimension::ALL`], the sum per column.
    pub cells: Vec<Vec<Count>>,
}

/// One month of the regional picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthPicture {
    /// The month.
    pub month: Month,
    /// How many offices' tables it sums.
    pub tables: usize,
    /// How many of them were below the threshold and said no counts.
    pub withheld: usize,
    /// Incidents counted in the tables that said their counts.
    pub total: u64,
    /// By region and kind of place.
    pub rows: Vec<PictureRow>,
    /// For each dimension, the sum of column totals.
    pub column_totals: Vec<Vec<Count>>,
}

/// The regional picture: every month received, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Picture {
    /// The months.
    pub months: Vec<MonthPicture>,
}

fn empty_cells() -> Vec<Vec<Count>> {
    Dimension::ALL
        .iter()
        .map(|d| vec![Count::default(); d.columns().len()])
        .collect()
}

impl Picture {
    /// Sums `tables` (already verified) by month, region and kind of place.
    pub fn merge<'a>(tables: impl IntoIterator<Item = &'a MonthTable>) -> Picture {
        let mut months: BTreeMap<Month, (MonthPicture, BTreeMap<RowKey, PictureRow>)> =
            BTreeMap::new();
        for table in tables {
            let (m, rows) = months.entry(table.month).or_insert_with(|| {
                (
                    MonthPicture {
                        month: table.month,
                        tables: 0,
                        withheld: 0,
                        total: 0,
                        rows: Vec::new(),
                        column_totals: empty_cells(),
                    },
                    BTreeMap::new(),
                )
            });
            m.tables += 1;
            let Some(total) = table.total else {
                m.withheld += 1;
                continue;
            };
            m.total = m.total.saturating_add(total);
            for (r, (key, row_total)) in table.rows.iter().zip(&table.row_totals).enumerate() {
                let row = rows.entry(key.clone()).or_insert_with(|| PictureRow {
                    key: key.clone(),
                    total: 0,
                    cells: empty_cells(),
                });
                row.total = row.total.saturating_add(*row_total);
                for (d, dim) in Dimension::ALL.iter().enumerate() {
                    let cols = dim.columns().len();
                    let Some(sums) = row.cells.get_mut(d) else {
                        continue;
                    };
                    match table.breakdown(*dim) {
                        Some(b) => {
                            for (c, sum) in sums.iter_mut().enumerate() {
                                sum.add(b.cells.get(r * cols + c).copied().flatten());
                            }
                        }
                        // A table without this breakdown says nothing of it.
                        None if *row_total > 0 => sums.iter_mut().for_each(|s| s.add(None)),
                        None => {}
                    }
                }
            }
            for (d, dim) in Dimension::ALL.iter().enumerate() {
                let Some(sums) = m.column_totals.get_mut(d) else {
                    continue;
                };
                match table.breakdown(*dim) {
                    Some(b) => {
                        for (sum, v) in sums.iter_mut().zip(&b.column_totals) {
                            sum.add(*v);
                        }
                    }
                    None if total > 0 => sums.iter_mut().for_each(|s| s.add(None)),
                    None => {}
                }
            }
        }
        Picture {
            months: months
                .into_values()
                .map(|(mut m, rows)| {
                    m.rows = rows.into_values().collect();
                    m
                })
                .collect(),
        }
    }

    /// Each region and kind of place with its total in every month (0
    /// where a month has none): the trend, oldest month first.
    pub fn trends(&self) -> Vec<(RowKey, Vec<u64>)> {
        let mut keys: Vec<RowKey> = self
            .months
            .iter()
            .flat_map(|m| m.rows.iter().map(|r| r.key.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let series = self
                    .months
                    .iter()
                    .map(|m| m.rows.iter().find(|r| r.key == k).map_or(0, |r| r.total))
                    .collect();
                (k, series)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::payload::PlaceSetting;
    use amparo_protocol::statistics::Breakdown;

    fn table(from: &str, region: &str, total: u64, age: Vec<Option<u64>>) -> MonthTable {
        MonthTable {
            v: 1,
            from: from.into(),
            month: Month::parse("2026-10").unwrap(),
            threshold: 5,
            rows: vec![RowKey {
                region: Some(region.into()),
                setting: Some(PlaceSetting::Border),
            }],
            row_totals: vec![total],
            total: Some(total),
            breakdowns: vec![Breakdown {
                by: Dimension::AgeBand,
                cells: age.clone(),
                column_totals: age,
            }],
        }
    }

    #[test]
    fn offices_sum_by_place_and_a_suppressed_part_marks_the_sum() {
        let a = table("a", "PE-TUM", 7, vec![Some(0), None, None, Some(0)]);
        let b = table("b", "PE-TUM", 9, vec![Some(0), Some(0), Some(9), Some(0)]);
        let mut c = table("c", "PE-LIM", 0, vec![Some(0); 4]);
        c.total = None;
        c.rows.clear();
        c.row_totals.clear();
        c.breakdowns.clear();
        let p = Picture::merge([&a, &b, &c]);
        assert_eq!(p.months.len(), 1);
        let m = &p.months[0];
        assert_eq!((m.tables, m.withheld, m.total), (3, 1, 16));
        assert_eq!(m.rows.len(), 1);
        let age = &m.rows[0].cells[2];
        assert_eq!(
            age[0],
            Count {
                known: 0,
                partial: false
            }
        );
        assert_eq!(
            age[2],
            Count {
                known: 9,
                partial: true
            }
        );
        assert_eq!(age[2].to_string(), "≥9");
        // The picture names no office.
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("\"a\"") && !json.contains("from"));
        assert_eq!(p.trends()[0].1, vec![16]);
    }
}
