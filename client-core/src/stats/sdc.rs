//! Statistical disclosure control (SDC) for small two-way tables of counts.
//!
//! Case-workers publish tables such as "district × type of support" to a
//! coordinating agency. The counts are of survivors of violence, and a small
//! count (1, 2, …) in a narrow category can point at one person. This module
//! decides which values of such a table may be published.
//!
//! # Threat model
//!
//! The observer sees everything that is published and knows the rules below:
//! every row total and the grand total `N` are published, zeros are always
//! published, and therefore every suppressed value is **at least 1**. No upper
//! bound is known to the observer. A suppressed value is *disclosed* when it is
//! uniquely determined: over all assignments of integers ≥ 1 to the suppressed
//! values that satisfy every row equation, every column equation (whose column
//! total may itself be suppressed) and `Σ column totals = N`, it takes exactly
//! one value. Blanking a small cell is worthless if it can be recovered by
//! subtraction, which is why secondary suppression and an exact audit exist.
//!
//! Note the guarantee is "not uniquely determined", nothing stronger: a
//! protected value may still be known to lie in a narrow range such as {1, 2}.
//!
//! # Method
//!
//! 1. **Primary suppression**: every interior cell and column total `v` with
//!    `1 ≤ v < threshold`.
//! 2. **Secondary suppression** (heuristic): for each suppressed value in
//!    turn, find the cheapest alternating cycle through it (see below) in the
//!    graph of all non-zero values, where already suppressed values cost 0 and
//!    published ones cost their value, and suppress everything on that cycle.
//!    Adding unknowns only adds freedom, so values already protected stay
//!    protected; every newly suppressed value lies on the cycle that was found
//!    and is protected too.
//! 3. **Exact audit** of the result (see [`audit`]). If it is not clean, fall
//!    back to suppressing every non-zero interior cell and column total; if
//!    that is still not clean, the table is **withheld**: only row totals and
//!    `N` are published.
//!
//! # The audit
//!
//! Write `C'[c] = −C[c]`. Every constraint then says "the perturbations of the
//! unknowns incident to a node sum to zero" on a bipartite graph: side A holds
//! the rows and a node `T_row` (the equation `Σ_c C[c] = N`), side B holds the
//! columns. A suppressed interior cell `(r, c)` is an edge `r – c`; a
//! suppressed column total `C[c]` is an edge `T_row – c` carrying `−C[c]`.
//! Integer perturbations that keep all equations are circulations, and they
//! decompose conformally into simple alternating ±1 cycles, each of which
//! respects the bounds if the whole perturbation does. So a suppressed value
//! can change iff a simple cycle through its edge exists in the residual
//! digraph: arc `a → b` when the edge can grow by 1 (a cell: always; a column
//! total: when `C ≥ 2`), arc `b → a` when it can shrink by 1 (a cell: when
//! `n ≥ 2`; a column total: always). One BFS per direction per suppressed value
//! decides this exactly.
//!
//! The audit needs the true suppressed values (to know which arcs exist), so
//! [`audit`] takes the true [`Grid`] next to the [`Protected`] table and first
//! checks ([`Protected::check_consistency`]) that every published value still
//! equals the true one. A [`Protected`] never holds the suppressed values
//! itself, so it can be logged or serialised without leaking them.

use std::collections::VecDeque;
use std::fmt;

/// Largest number of rows accepted.
pub const MAX_ROWS: usize = 64;
/// Largest number of columns accepted.
pub const MAX_COLS: usize = 32;
/// Largest count accepted in an interior cell.
pub const MAX_CELL: u64 = 1_000_000;

/// A two-way table of counts, `rows × cols` interior cells stored row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Interior counts, row-major: cell `(r, c)` is at `r * cols + c`.
    pub cells: Vec<u64>,
}

/// The position of a suppressible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Where {
    /// Interior cell at `row`, `col` (both zero-based).
    Cell {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
    },
    /// Total of column `col` (zero-based).
    ColumnTotal {
        /// Zero-based column.
        col: usize,
    },
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Cell { row, col } => write!(f, "the cell at row {row}, column {col}"),
            Where::ColumnTotal { col } => write!(f, "the total of column {col}"),
        }
    }
}

/// A table prepared for publication: `None` marks a suppressed value.
///
/// Only [`protect`] can create one. It holds published values only (never a
/// suppressed one) plus, privately, the threshold it was made with, so that
/// [`Protected::check_consistency`] can also refuse a small value that was
/// published by a later edit of the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Interior cells, row-major; `None` = suppressed.
    pub cells: Vec<Option<u64>>,
    /// Row totals, always published.
    pub row_totals: Vec<u64>,
    /// Column totals; `None` = suppressed.
    pub column_totals: Vec<Option<u64>>,
    /// Grand total `N`, always published.
    pub total: u64,
    /// `true` when the table could not be protected: every cell and column
    /// total is `None`, only row totals and `N` are published.
    pub withheld: bool,
    /// The threshold used for primary suppression.
    threshold: u64,
}

/// Why a table could not be protected or audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdcError {
    /// The table has no rows or no columns.
    EmptyTable,
    /// The table exceeds [`MAX_ROWS`] × [`MAX_COLS`].
    TooLarge {
        /// Rows requested.
        rows: usize,
        /// Columns requested.
        cols: usize,
    },
    /// A list has the wrong number of entries for the table's dimensions.
    ShapeMismatch {
        /// Entries expected.
        expected: usize,
        /// Entries found.
        actual: usize,
    },
    /// An interior count exceeds [`MAX_CELL`].
    ValueTooLarge {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The offending count.
        value: u64,
    },
    /// The threshold is 0; it must be at least 1.
    InvalidThreshold,
    /// A published value differs from the true one.
    PublishedValueWrong {
        /// Where the wrong value is.
        at: Where,
    },
    /// A published row total differs from the true one.
    RowTotalWrong {
        /// Zero-based row.
        row: usize,
    },
    /// The published grand total differs from the true one.
    GrandTotalWrong,
    /// A zero is suppressed in a table that is not withheld, which breaks the
    /// observer model (suppressed values are known to be at least 1).
    ZeroSuppressed {
        /// Where the suppressed zero is.
        at: Where,
    },
    /// A value below the threshold is published.
    SmallValuePublished {
        /// Where the small value is.
        at: Where,
    },
    /// The table is marked withheld but a cell or column total is published.
    WithheldButPublished {
        /// Where the published value is.
        at: Where,
    },
}

impl fmt::Display for SdcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdcError::EmptyTable => write!(f, "The table has no rows or no columns."),
            SdcError::TooLarge { rows, cols } => write!(
                f,
                "The table has {rows} rows and {cols} columns, more than the {MAX_ROWS} × {MAX_COLS} allowed."
            ),
            SdcError::ShapeMismatch { expected, actual } => write!(
                f,
                "A part of the table has {actual} entries where {expected} were expected."
            ),
            SdcError::ValueTooLarge { row, col, value } => write!(
                f,
                "The count {value} at row {row}, column {col} exceeds the maximum of {MAX_CELL}."
            ),
            SdcError::InvalidThreshold => {
                write!(f, "The suppression threshold must be at least 1.")
            }
            SdcError::PublishedValueWrong { at } => {
                write!(
                    f,
                    "The published value of {at} differs from the true value."
                )
            }
            SdcError::RowTotalWrong { row } => {
                write!(
                    f,
                    "The published total of row {row} differs from the true total."
                )
            }
            SdcError::GrandTotalWrong => {
                write!(f, "The published grand total differs from the true total.")
            }
            SdcError::ZeroSuppressed { at } => {
                write!(
                    f,
                    "{} is zero but suppressed; zeros must be published.",
                    Capital(at)
                )
            }
            SdcError::SmallValuePublished { at } => {
                write!(f, "{} is below the threshold but published.", Capital(at))
            }
            SdcError::WithheldButPublished { at } => {
                write!(f, "The table is withheld but {at} is published.")
            }
        }
    }
}

impl std::error::Error for SdcError {}

/// Displays a [`Where`] at the start of a sentence.
struct Capital<'a>(&'a Where);

impl fmt::Display for Capital<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => write!(f, "{}{}", first.to_uppercase(), chars.as_str()),
            None => Ok(()),
        }
    }
}

impl Protected {
    /// Checks that the published fields agree with the true table `truth`:
    /// shapes match, every published value (cells, column totals, row totals,
    /// `N`) equals the true one, no zero is suppressed (unless withheld), no
    /// value below the threshold is published, and a withheld table publishes
    /// no cell or column total.
    pub fn check_consistency(&self, truth: &Grid) -> Result<(), SdcError> {
        validate_grid(truth)?;
        expect_len(truth.rows, self.rows)?;
        expect_len(truth.cols, self.cols)?;
        expect_len(truth.cells.len(), self.cells.len())?;
        expect_len(truth.rows, self.row_totals.len())?;
        expect_len(truth.cols, self.column_totals.len())?;
        let rows_true = row_totals(truth);
        for (row, (shown, value)) in self.row_totals.iter().zip(&rows_true).enumerate() {
            if shown != value {
                return Err(SdcError::RowTotalWrong { row });
            }
        }
        if self.total != grand_total(&rows_true) {
            return Err(SdcError::GrandTotalWrong);
        }
        for (index, (shown, value)) in self.cells.iter().zip(&truth.cells).enumerate() {
            let at = cell_at(index, truth.cols);
            self.check_item(at, *shown, *value)?;
        }
        let cols_true = column_totals(truth);
        for (col, (shown, value)) in self.column_totals.iter().zip(&cols_true).enumerate() {
            self.check_item(Where::ColumnTotal { col }, *shown, *value)?;
        }
        Ok(())
    }

    /// Checks one published-or-suppressed value against its true value.
    fn check_item(&self, at: Where, shown: Option<u64>, value: u64) -> Result<(), SdcError> {
        match shown {
            Some(_) if self.withheld => Err(SdcError::WithheldButPublished { at }),
            Some(v) if v != value => Err(SdcError::PublishedValueWrong { at }),
            Some(_) if is_primary(value, self.threshold) => {
                Err(SdcError::SmallValuePublished { at })
            }
            None if value == 0 && !self.withheld => Err(SdcError::ZeroSuppressed { at }),
            _ => Ok(()),
        }
    }
}

/// Protects `grid` for publication with primary threshold `threshold` (≥ 1).
///
/// Every interior cell and column total `v` with `1 ≤ v < threshold` is
/// suppressed, then non-zero secondary values are added until [`audit`] is
/// clean. Falls back to suppressing every non-zero value, and finally to a
/// withheld table. The result always passes [`audit`].
pub fn protect(grid: &Grid, threshold: u64) -> Result<Protected, SdcError> {
    validate_grid(grid)?;
    if threshold == 0 {
        return Err(SdcError::InvalidThreshold);
    }
    let candidates = nonzero_edges(grid);
    let mut hidden: Vec<bool> = candidates
        .iter()
        .map(|e| is_primary(e.value, threshold))
        .collect();
    if add_secondary(grid, &candidates, &mut hidden) {
        let p = publish(grid, threshold, hidden_positions(&candidates, &hidden));
        if audit(grid, &p)?.is_empty() {
            return Ok(p);
        }
    }
    let all = publish(grid, threshold, candidates.iter().map(|e| e.at));
    if audit(grid, &all)?.is_empty() {
        return Ok(all);
    }
    Ok(withheld(grid, threshold))
}

/// Exact audit: returns every suppressed value that an observer can determine
/// uniquely (empty = safe to publish), in row-major cell order followed by
/// column totals.
///
/// `grid` is the true table `p` was made from: its values of the suppressed
/// cells decide how far they can move. Fails if `p` does not agree with
/// `grid` (see [`Protected::check_consistency`]). A withheld table publishes
/// only row totals and `N`, which the model always publishes, so it audits as
/// empty.
pub fn audit(grid: &Grid, p: &Protected) -> Result<Vec<Where>, SdcError> {
    p.check_consistency(grid)?;
    if p.withheld {
        return Ok(Vec::new());
    }
    let edges = suppressed_edges(grid, p);
    let graph = residual(node_count(p.rows, p.cols), &edges);
    Ok(edges
        .iter()
        .enumerate()
        .filter(|(index, edge)| !is_free(&graph, edge, *index))
        .map(|(_, edge)| edge.at)
        .collect())
}

// ---------------------------------------------------------------------------
// Validation and table arithmetic

/// Rejects empty, oversized or malformed grids.
fn validate_grid(grid: &Grid) -> Result<(), SdcError> {
    if grid.rows == 0 || grid.cols == 0 {
        return Err(SdcError::EmptyTable);
    }
    let too_large = SdcError::TooLarge {
        rows: grid.rows,
        cols: grid.cols,
    };
    if grid.rows > MAX_ROWS || grid.cols > MAX_COLS {
        return Err(too_large);
    }
    let expected = grid.rows.checked_mul(grid.cols).ok_or(too_large)?;
    expect_len(expected, grid.cells.len())?;
    for (index, &value) in grid.cells.iter().enumerate() {
        if value > MAX_CELL {
            let (row, col) = row_col(index, grid.cols);
            return Err(SdcError::ValueTooLarge { row, col, value });
        }
    }
    Ok(())
}

/// Errors unless `actual == expected`.
fn expect_len(expected: usize, actual: usize) -> Result<(), SdcError> {
    if expected == actual {
        Ok(())
    } else {
        Err(SdcError::ShapeMismatch { expected, actual })
    }
}

/// Whether `value` must be suppressed primarily.
fn is_primary(value: u64, threshold: u64) -> bool {
    value >= 1 && value < threshold
}

/// Row and column of row-major `index` (`(0, 0)` if `cols` is zero).
fn row_col(index: usize, cols: usize) -> (usize, usize) {
    (
        index.checked_div(cols).unwrap_or(0),
        index.checked_rem(cols).unwrap_or(0),
    )
}

/// Position of row-major `index` as a [`Where`].
fn cell_at(index: usize, cols: usize) -> Where {
    let (row, col) = row_col(index, cols);
    Where::Cell { row, col }
}

/// Row-major index of `(row, col)`.
fn cell_index(row: usize, col: usize, cols: usize) -> Option<usize> {
    row.checked_mul(cols)?.checked_add(col)
}

/// Row totals. Saturation cannot occur within the validated bounds.
fn row_totals(grid: &Grid) -> Vec<u64> {
    grid.cells
        .chunks(grid.cols.max(1))
        .map(|row| row.iter().fold(0u64, |sum, &v| sum.saturating_add(v)))
        .collect()
}

/// Column totals. Saturation cannot occur within the validated bounds.
fn column_totals(grid: &Grid) -> Vec<u64> {
    let mut totals = vec![0u64; grid.cols];
    for row in grid.cells.chunks(grid.cols.max(1)) {
        for (total, &v) in totals.iter_mut().zip(row) {
            *total = total.saturating_add(v);
        }
    }
    totals
}

/// Grand total from the row totals.
fn grand_total(row_totals: &[u64]) -> u64 {
    row_totals
        .iter()
        .fold(0u64, |sum, &v| sum.saturating_add(v))
}

/// Builds a (not withheld) [`Protected`] with the values at `hidden` suppressed.
fn publish(grid: &Grid, threshold: u64, hidden: impl IntoIterator<Item = Where>) -> Protected {
    let rows = row_totals(grid);
    let mut cells: Vec<Option<u64>> = grid.cells.iter().copied().map(Some).collect();
    let mut column_totals: Vec<Option<u64>> = column_totals(grid).into_iter().map(Some).collect();
    for at in hidden {
        let slot = match at {
            Where::Cell { row, col } => {
                cell_index(row, col, grid.cols).and_then(|i| cells.get_mut(i))
            }
            Where::ColumnTotal { col } => column_totals.get_mut(col),
        };
        if let Some(slot) = slot {
            *slot = None;
        }
    }
    Protected {
        rows: grid.rows,
        cols: grid.cols,
        cells,
        total: grand_total(&rows),
        row_totals: rows,
        column_totals,
        withheld: false,
        threshold,
    }
}

/// The withheld form of `grid`: only row totals and `N` are published.
fn withheld(grid: &Grid, threshold: u64) -> Protected {
    let rows = row_totals(grid);
    Protected {
        rows: grid.rows,
        cols: grid.cols,
        cells: vec![None; grid.cells.len()],
        total: grand_total(&rows),
        row_totals: rows,
        column_totals: vec![None; grid.cols],
        withheld: true,
        threshold,
    }
}

// ---------------------------------------------------------------------------
// The bipartite graph of unknowns

/// A value seen as an edge `a – b` of the bipartite graph (`a` on side A:
/// a row or `T_row`; `b` on side B: a column).
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The value's position in the table.
    at: Where,
    /// Side-A node: the row, or `T_row` for a column total.
    a: usize,
    /// Side-B node: the column.
    b: usize,
    /// True value (a cell count or a column total).
    value: u64,
}

impl Edge {
    /// Builds the edge for the value at `at` in a table with `rows` rows.
    fn new(at: Where, rows: usize, value: u64) -> Self {
        let (a, col) = match at {
            Where::Cell { row, col } => (row, col),
            Where::ColumnTotal { col } => (rows, col),
        };
        Edge {
            at,
            a,
            b: column_node(rows, col),
            value,
        }
    }

    /// Whether the edge's quantity can grow by 1 (arc `a → b`). A column
    /// total edge carries `−C`, so growing means `C` shrinks: needs `C ≥ 2`.
    fn can_increase(&self) -> bool {
        match self.at {
            Where::Cell { .. } => true,
            Where::ColumnTotal { .. } => self.value >= 2,
        }
    }

    /// Whether the edge's quantity can shrink by 1 (arc `b → a`): a cell
    /// needs `n ≥ 2`; a column total can always grow.
    fn can_decrease(&self) -> bool {
        match self.at {
            Where::Cell { .. } => self.value >= 2,
            Where::ColumnTotal { .. } => true,
        }
    }
}

/// Node index of column `col`: rows are `0..rows`, `T_row` is `rows`.
fn column_node(rows: usize, col: usize) -> usize {
    rows.saturating_add(1).saturating_add(col)
}

/// Number of nodes: rows, `T_row`, columns.
fn node_count(rows: usize, cols: usize) -> usize {
    column_node(rows, cols)
}

/// All non-zero interior cells (row-major) then all non-zero column totals.
fn nonzero_edges(grid: &Grid) -> Vec<Edge> {
    let cells = grid
        .cells
        .iter()
        .enumerate()
        .map(|(i, &v)| (cell_at(i, grid.cols), v));
    let totals = column_totals(grid)
        .into_iter()
        .enumerate()
        .map(|(col, v)| (Where::ColumnTotal { col }, v));
    cells
        .chain(totals)
        .filter(|&(_, v)| v > 0)
        .map(|(at, v)| Edge::new(at, grid.rows, v))
        .collect()
}

/// The suppressed values of `p` (consistent with `truth`, not withheld) as
/// edges carrying their true values.
fn suppressed_edges(truth: &Grid, p: &Protected) -> Vec<Edge> {
    let cells = p
        .cells
        .iter()
        .zip(&truth.cells)
        .enumerate()
        .filter(|(_, (shown, _))| shown.is_none())
        .map(|(i, (_, &v))| Edge::new(cell_at(i, p.cols), p.rows, v));
    let totals = p
        .column_totals
        .iter()
        .zip(column_totals(truth))
        .enumerate()
        .filter(|(_, (shown, _))| shown.is_none())
        .map(|(col, (_, v))| Edge::new(Where::ColumnTotal { col }, p.rows, v));
    cells.chain(totals).collect()
}

/// Positions of the edges marked hidden.
fn hidden_positions<'a>(edges: &'a [Edge], hidden: &'a [bool]) -> impl Iterator<Item = Where> + 'a {
    edges
        .iter()
        .zip(hidden)
        .filter(|(_, h)| **h)
        .map(|(e, _)| e.at)
}

/// An arc of the residual digraph.
#[derive(Debug, Clone, Copy)]
struct Arc {
    /// Head node.
    to: usize,
    /// Index of the edge the arc belongs to.
    edge: usize,
}

/// Adjacency lists of the residual digraph of `edges`.
fn residual(nodes: usize, edges: &[Edge]) -> Vec<Vec<Arc>> {
    let mut adj: Vec<Vec<Arc>> = vec![Vec::new(); nodes];
    for (index, e) in edges.iter().enumerate() {
        if e.can_increase()
            && let Some(list) = adj.get_mut(e.a)
        {
            list.push(Arc {
                to: e.b,
                edge: index,
            });
        }
        if e.can_decrease()
            && let Some(list) = adj.get_mut(e.b)
        {
            list.push(Arc {
                to: e.a,
                edge: index,
            });
        }
    }
    adj
}

/// Outgoing arcs of `node` (none if out of range).
fn arcs_of(adj: &[Vec<Arc>], node: usize) -> &[Arc] {
    adj.get(node).map_or(&[], Vec::as_slice)
}

/// Whether edge `edge` (at `index`) lies on a simple residual cycle, i.e. its
/// value is not determined. Any failure of a lookup answers "determined".
fn is_free(adj: &[Vec<Arc>], edge: &Edge, index: usize) -> bool {
    (edge.can_increase() && reaches(adj, edge.b, edge.a, index))
        || (edge.can_decrease() && reaches(adj, edge.a, edge.b, index))
}

/// BFS: is `to` reachable from `from` without using arcs of edge `skip`?
fn reaches(adj: &[Vec<Arc>], from: usize, to: usize, skip: usize) -> bool {
    let mut seen = vec![false; adj.len()];
    let mut queue = VecDeque::new();
    if let Some(s) = seen.get_mut(from) {
        *s = true;
        queue.push_back(from);
    }
    while let Some(node) = queue.pop_front() {
        if node == to {
            return true;
        }
        for arc in arcs_of(adj, node).iter().filter(|arc| arc.edge != skip) {
            if let Some(s) = seen.get_mut(arc.to)
                && !*s
            {
                *s = true;
                queue.push_back(arc.to);
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Secondary suppression

/// Greedy secondary suppression over the graph of all non-zero values. For
/// every hidden edge, in order, hides the cheapest cycle through it. Returns
/// `false` if some hidden edge lies on no cycle at all (then no suppression
/// pattern can protect it).
fn add_secondary(grid: &Grid, edges: &[Edge], hidden: &mut [bool]) -> bool {
    let adj = residual(node_count(grid.rows, grid.cols), edges);
    for (index, edge) in edges.iter().enumerate() {
        if !hidden.get(index).copied().unwrap_or(false) {
            continue;
        }
        let costs: Vec<u64> = edges
            .iter()
            .zip(hidden.iter())
            .map(|(e, &h)| if h { 0 } else { e.value })
            .collect();
        let Some(path) = cheapest_cycle(&adj, &costs, edge, index) else {
            return false;
        };
        for j in path {
            if let Some(h) = hidden.get_mut(j) {
                *h = true;
            }
        }
    }
    true
}

/// Edges (other than `index`) of the cheapest residual cycle through `edge`.
fn cheapest_cycle(
    adj: &[Vec<Arc>],
    costs: &[u64],
    edge: &Edge,
    index: usize,
) -> Option<Vec<usize>> {
    let up = if edge.can_increase() {
        cheapest_path(adj, costs, edge.b, edge.a, index)
    } else {
        None
    };
    let down = if edge.can_decrease() {
        cheapest_path(adj, costs, edge.a, edge.b, index)
    } else {
        None
    };
    match (up, down) {
        (Some(u), Some(d)) => Some(if d.0 < u.0 { d.1 } else { u.1 }),
        (Some(u), None) => Some(u.1),
        (None, Some(d)) => Some(d.1),
        (None, None) => None,
    }
}

/// Dijkstra (dense, the graph has at most 97 nodes) from `from` to `to`
/// avoiding edge `skip`. Returns the cost and the edges of the path.
fn cheapest_path(
    adj: &[Vec<Arc>],
    costs: &[u64],
    from: usize,
    to: usize,
    skip: usize,
) -> Option<(u64, Vec<usize>)> {
    let n = adj.len();
    let mut dist: Vec<Option<u64>> = vec![None; n];
    let mut prev: Vec<Option<(usize, usize)>> = vec![None; n];
    let mut done = vec![false; n];
    *dist.get_mut(from)? = Some(0);
    while let Some((node, d)) = closest_open(&dist, &done) {
        if node == to {
            break;
        }
        *done.get_mut(node)? = true;
        for arc in arcs_of(adj, node).iter().filter(|arc| arc.edge != skip) {
            let next = d.saturating_add(*costs.get(arc.edge)?);
            let slot = dist.get_mut(arc.to)?;
            if !*done.get(arc.to)? && slot.is_none_or(|old| next < old) {
                *slot = Some(next);
                *prev.get_mut(arc.to)? = Some((node, arc.edge));
            }
        }
    }
    let total = (*dist.get(to)?)?;
    Some((total, walk_back(&prev, from, to)?))
}

/// The unfinished node with the smallest known distance (first on ties).
fn closest_open(dist: &[Option<u64>], done: &[bool]) -> Option<(usize, u64)> {
    dist.iter()
        .zip(done)
        .enumerate()
        .filter_map(|(node, (d, &fin))| if fin { None } else { d.map(|d| (node, d)) })
        .min_by_key(|&(_, d)| d)
}

/// Edges of the predecessor path ending at `to`.
fn walk_back(prev: &[Option<(usize, usize)>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut path = Vec::new();
    let mut node = to;
    while node != from {
        if path.len() > prev.len() {
            return None;
        }
        let (before, edge) = (*prev.get(node)?)?;
        path.push(edge);
        node = before;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn grid(rows: usize, cols: usize, cells: &[u64]) -> Grid {
        Grid {
            rows,
            cols,
            cells: cells.to_vec(),
        }
    }

    fn cell(row: usize, col: usize) -> Where {
        Where::Cell { row, col }
    }

    fn total(col: usize) -> Where {
        Where::ColumnTotal { col }
    }

    /// Audit of `g` with exactly `hidden` suppressed (threshold 1, so any
    /// pattern is consistent).
    fn audit_pattern(g: &Grid, hidden: &[Where]) -> Vec<Where> {
        let p = publish(g, 1, hidden.iter().copied());
        let mut out = audit(g, &p).unwrap();
        out.sort();
        out
    }

    // ----- Independent brute-force observer --------------------------------

    /// Range of values (min, max) each suppressed value takes over all
    /// integer assignments ≥ 1 consistent with the published values, using
    /// only what `p` publishes. `None` if the search budget ran out.
    fn brute_force(p: &Protected, budget: u64) -> Option<Vec<(Where, i64, i64)>> {
        let mut s = Search::new(p, budget);
        if !s.dfs(0) {
            return None;
        }
        let ranges: Vec<(Where, i64, i64)> = s
            .unknowns()
            .into_iter()
            .zip(&s.ranges)
            .map(|(at, r)| {
                let (lo, hi) = r.expect("the true table is always a solution");
                (at, lo, hi)
            })
            .collect();
        Some(ranges)
    }

    fn disclosed_by_brute_force(g: &Grid, p: &Protected, budget: u64) -> Option<Vec<Where>> {
        let ranges = brute_force(p, budget)?;
        // The true table must be among the solutions.
        let cols_true = column_totals(g);
        for &(at, lo, hi) in &ranges {
            let truth = match at {
                Where::Cell { row, col } => g.cells[row * p.cols + col],
                Where::ColumnTotal { col } => cols_true[col],
            } as i64;
            assert!(
                lo <= truth && truth <= hi,
                "{at:?}: {lo}..{hi} misses {truth}"
            );
        }
        let mut out: Vec<Where> = ranges
            .into_iter()
            .filter(|&(_, lo, hi)| lo == hi)
            .map(|(at, _, _)| at)
            .collect();
        out.sort();
        Some(out)
    }

    struct Search {
        rows: usize,
        cols: usize,
        values: Vec<i64>,
        /// Unknown cells in row-major order.
        order: Vec<(usize, usize)>,
        /// Unknowns after position k in the same row / column.
        row_after: Vec<i64>,
        col_after: Vec<i64>,
        row_rem: Vec<i64>,
        col_rem: Vec<i64>,
        col_known: Vec<Option<i64>>,
        total: i64,
        /// (min, max) per unknown: cells in `order`, then unknown column totals.
        ranges: Vec<Option<(i64, i64)>>,
        nodes: u64,
        budget: u64,
    }

    impl Search {
        fn new(p: &Protected, budget: u64) -> Self {
            let (rows, cols) = (p.rows, p.cols);
            let values: Vec<i64> = p.cells.iter().map(|c| c.unwrap_or(0) as i64).collect();
            let mut order = Vec::new();
            for r in 0..rows {
                for c in 0..cols {
                    if p.cells[r * cols + c].is_none() {
                        order.push((r, c));
                    }
                }
            }
            let row_after = (0..order.len())
                .map(|k| order[k + 1..].iter().filter(|x| x.0 == order[k].0).count() as i64)
                .collect();
            let col_after = (0..order.len())
                .map(|k| order[k + 1..].iter().filter(|x| x.1 == order[k].1).count() as i64)
                .collect();
            let row_rem = (0..rows)
                .map(|r| {
                    p.row_totals[r] as i64 - (0..cols).map(|c| values[r * cols + c]).sum::<i64>()
                })
                .collect();
            let col_known: Vec<Option<i64>> = p
                .column_totals
                .iter()
                .map(|c| c.map(|v| v as i64))
                .collect();
            let col_rem = (0..cols)
                .map(|c| {
                    col_known[c].unwrap_or(0) - (0..rows).map(|r| values[r * cols + c]).sum::<i64>()
                })
                .collect();
            let unknown_cols = col_known.iter().filter(|c| c.is_none()).count();
            Search {
                rows,
                cols,
                ranges: vec![None; order.len() + unknown_cols],
                values,
                order,
                row_after,
                col_after,
                row_rem,
                col_rem,
                col_known,
                total: p.total as i64,
                nodes: 0,
                budget,
            }
        }

        fn unknowns(&self) -> Vec<Where> {
            let cells = self.order.iter().map(|&(r, c)| cell(r, c));
            let totals = (0..self.cols)
                .filter(|&c| self.col_known[c].is_none())
                .map(total);
            cells.chain(totals).collect()
        }

        /// Returns false when the budget is exhausted.
        fn dfs(&mut self, k: usize) -> bool {
            self.nodes += 1;
            if self.nodes > self.budget {
                return false;
            }
            if k == self.order.len() {
                self.leaf();
                return true;
            }
            let (r, c) = self.order[k];
            let mut lo = 1i64;
            let mut hi;
            if self.row_after[k] == 0 {
                lo = lo.max(self.row_rem[r]);
                hi = self.row_rem[r];
            } else {
                hi = self.row_rem[r] - self.row_after[k];
            }
            if self.col_known[c].is_some() {
                if self.col_after[k] == 0 {
                    lo = lo.max(self.col_rem[c]);
                    hi = hi.min(self.col_rem[c]);
                } else {
                    hi = hi.min(self.col_rem[c] - self.col_after[k]);
                }
            }
            for v in lo..=hi {
                self.values[r * self.cols + c] = v;
                self.row_rem[r] -= v;
                self.col_rem[c] -= v;
                let ok = self.dfs(k + 1);
                self.row_rem[r] += v;
                self.col_rem[c] += v;
                if !ok {
                    return false;
                }
            }
            true
        }

        fn leaf(&mut self) {
            if self.row_rem.iter().any(|&x| x != 0) {
                return;
            }
            let mut sums = Vec::new();
            for c in 0..self.cols {
                let sum: i64 = (0..self.rows).map(|r| self.values[r * self.cols + c]).sum();
                match self.col_known[c] {
                    Some(known) if known != sum => return,
                    None if sum < 1 => return,
                    _ => sums.push(sum),
                }
            }
            if sums.iter().sum::<i64>() != self.total {
                return;
            }
            let mut found: Vec<i64> = self
                .order
                .iter()
                .map(|&(r, c)| self.values[r * self.cols + c])
                .collect();
            found.extend(
                (0..self.cols)
                    .filter(|&c| self.col_known[c].is_none())
                    .map(|c| sums[c]),
            );
            for (range, v) in self.ranges.iter_mut().zip(found) {
                *range = Some(match *range {
                    None => (v, v),
                    Some((lo, hi)) => (lo.min(v), hi.max(v)),
                });
            }
        }
    }

    // ----- Hand-made cases --------------------------------------------------

    #[test]
    fn rectangle_of_ones_is_fully_disclosed() {
        let g = grid(2, 2, &[1, 1, 1, 1]);
        let all = [cell(0, 0), cell(0, 1), cell(1, 0), cell(1, 1)];
        assert_eq!(audit_pattern(&g, &all), all.to_vec());
        let mut with_totals = all.to_vec();
        with_totals.extend([total(0), total(1)]);
        assert_eq!(audit_pattern(&g, &with_totals), with_totals);
    }

    #[test]
    fn rectangle_with_room_is_safe() {
        let g = grid(2, 2, &[1, 3, 3, 5]);
        let all = [cell(0, 0), cell(0, 1), cell(1, 0), cell(1, 1)];
        assert!(audit_pattern(&g, &all).is_empty());
        // One 1 too many: every value is pinned by the ones.
        let g = grid(2, 2, &[1, 1, 1, 5]);
        assert_eq!(audit_pattern(&g, &all), all.to_vec());
    }

    #[test]
    fn single_suppressed_cell_in_row_is_disclosed() {
        let g = grid(2, 3, &[1, 5, 3, 4, 6, 2]);
        assert_eq!(audit_pattern(&g, &[cell(0, 0)]), vec![cell(0, 0)]);
        // Two in the row but nothing else in their columns: still disclosed
        // through the published column totals.
        assert_eq!(
            audit_pattern(&g, &[cell(0, 0), cell(0, 1)]),
            vec![cell(0, 0), cell(0, 1)]
        );
    }

    #[test]
    fn suppressed_column_totals_create_freedom() {
        let g = grid(1, 2, &[1, 4]);
        let cells = [cell(0, 0), cell(0, 1)];
        assert_eq!(audit_pattern(&g, &cells), cells.to_vec());
        let all = [cell(0, 0), cell(0, 1), total(0), total(1)];
        assert!(audit_pattern(&g, &all).is_empty());
    }

    #[test]
    fn single_suppressed_column_total_is_disclosed_by_n() {
        let g = grid(2, 2, &[1, 4, 6, 2]);
        assert_eq!(audit_pattern(&g, &[total(1)]), vec![total(1)]);
    }

    #[test]
    fn hand_cases_agree_with_brute_force() {
        let cases: Vec<(Grid, Vec<Where>)> = vec![
            (
                grid(2, 2, &[1, 1, 1, 1]),
                vec![cell(0, 0), cell(0, 1), cell(1, 0), cell(1, 1)],
            ),
            (
                grid(2, 2, &[1, 3, 3, 5]),
                vec![cell(0, 0), cell(0, 1), cell(1, 0), cell(1, 1)],
            ),
            (
                grid(1, 2, &[1, 4]),
                vec![cell(0, 0), cell(0, 1), total(0), total(1)],
            ),
            (grid(2, 3, &[1, 5, 3, 4, 6, 2]), vec![cell(0, 0)]),
        ];
        for (g, hidden) in cases {
            let p = publish(&g, 1, hidden.iter().copied());
            assert_eq!(
                audit(&g, &p).unwrap(),
                disclosed_by_brute_force(&g, &p, u64::MAX).unwrap()
            );
        }
    }

    #[test]
    fn protect_picks_the_cheapest_rectangle() {
        let g = grid(2, 3, &[1, 5, 6, 4, 7, 9]);
        let p = protect(&g, 3).unwrap();
        assert!(!p.withheld);
        assert_eq!(
            p.cells,
            vec![None, None, Some(6), None, None, Some(9)],
            "{p:?}"
        );
        assert_eq!(p.column_totals, vec![Some(5), Some(12), Some(15)]);
        assert_eq!(p.row_totals, vec![12, 20]);
        assert_eq!(p.total, 32);
        assert!(audit(&g, &p).unwrap().is_empty());
    }

    #[test]
    fn threshold_one_publishes_everything() {
        let g = grid(2, 2, &[1, 0, 2, 3]);
        let p = protect(&g, 1).unwrap();
        assert_eq!(p.cells, vec![Some(1), Some(0), Some(2), Some(3)]);
        assert_eq!(p.column_totals, vec![Some(3), Some(3)]);
        assert!(!p.withheld);
    }

    #[test]
    fn unprotectable_table_is_withheld() {
        // Row 0 has a single non-zero value: the row total gives it away.
        let g = grid(2, 2, &[1, 0, 0, 5]);
        let p = protect(&g, 3).unwrap();
        assert!(p.withheld);
        assert!(p.cells.iter().all(Option::is_none));
        assert!(p.column_totals.iter().all(Option::is_none));
        assert_eq!(p.row_totals, vec![1, 5]);
        assert_eq!(p.total, 6);
        assert!(audit(&g, &p).unwrap().is_empty());
    }

    #[test]
    fn column_totals_used_as_secondary() {
        // One row: only suppressing the column totals can protect the 1.
        let g = grid(1, 3, &[1, 4, 0]);
        let p = protect(&g, 2).unwrap();
        assert!(!p.withheld);
        assert_eq!(p.cells, vec![None, None, Some(0)]);
        assert_eq!(p.column_totals, vec![None, None, Some(0)]);
    }

    #[test]
    fn invalid_input_is_refused() {
        assert_eq!(protect(&grid(0, 3, &[]), 3), Err(SdcError::EmptyTable));
        let big = grid(65, 1, &[1; 65]);
        assert_eq!(
            protect(&big, 3),
            Err(SdcError::TooLarge { rows: 65, cols: 1 })
        );
        let wide = grid(1, 33, &[1; 33]);
        assert_eq!(
            protect(&wide, 3),
            Err(SdcError::TooLarge { rows: 1, cols: 33 })
        );
        assert_eq!(
            protect(&grid(2, 2, &[1, 2, 3]), 3),
            Err(SdcError::ShapeMismatch {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            protect(&grid(1, 2, &[1, 1_000_001]), 3),
            Err(SdcError::ValueTooLarge {
                row: 0,
                col: 1,
                value: 1_000_001
            })
        );
        assert!(protect(&grid(1, 2, &[1, 1_000_000]), 3).is_ok());
        assert_eq!(
            protect(&grid(1, 1, &[5]), 0),
            Err(SdcError::InvalidThreshold)
        );
        // Oversized but with a huge declared shape: no overflow.
        let huge = Grid {
            rows: usize::MAX,
            cols: usize::MAX,
            cells: Vec::new(),
        };
        assert!(matches!(protect(&huge, 3), Err(SdcError::TooLarge { .. })));
    }

    #[test]
    fn tampering_is_detected() {
        let g = grid(2, 3, &[1, 5, 6, 4, 7, 0]);
        let p = protect(&g, 3).unwrap();
        assert_eq!(p.check_consistency(&g), Ok(()));

        let mut q = p.clone();
        q.cells[2] = Some(7);
        assert_eq!(
            audit(&g, &q),
            Err(SdcError::PublishedValueWrong { at: cell(0, 2) })
        );

        let mut q = p.clone();
        q.cells[0] = Some(1);
        assert_eq!(
            audit(&g, &q),
            Err(SdcError::SmallValuePublished { at: cell(0, 0) })
        );

        let mut q = p.clone();
        q.cells[5] = None;
        assert_eq!(
            audit(&g, &q),
            Err(SdcError::ZeroSuppressed { at: cell(1, 2) })
        );

        let mut q = p.clone();
        q.withheld = true;
        assert_eq!(
            audit(&g, &q),
            Err(SdcError::WithheldButPublished { at: cell(0, 2) })
        );

        let mut q = p.clone();
        q.row_totals[1] += 1;
        assert_eq!(audit(&g, &q), Err(SdcError::RowTotalWrong { row: 1 }));

        let mut q = p.clone();
        q.total += 1;
        assert_eq!(audit(&g, &q), Err(SdcError::GrandTotalWrong));

        let mut q = p.clone();
        q.column_totals.pop();
        assert_eq!(
            audit(&g, &q),
            Err(SdcError::ShapeMismatch {
                expected: 3,
                actual: 2
            })
        );

        let mut q = p;
        q.cols = 2;
        assert!(matches!(audit(&g, &q), Err(SdcError::ShapeMismatch { .. })));
    }

    #[test]
    fn error_messages_are_sentences() {
        let errors = [
            SdcError::EmptyTable,
            SdcError::TooLarge { rows: 65, cols: 1 },
            SdcError::ShapeMismatch {
                expected: 4,
                actual: 3,
            },
            SdcError::ValueTooLarge {
                row: 0,
                col: 1,
                value: 2_000_000,
            },
            SdcError::InvalidThreshold,
            SdcError::PublishedValueWrong { at: cell(1, 2) },
            SdcError::RowTotalWrong { row: 1 },
            SdcError::GrandTotalWrong,
            SdcError::ZeroSuppressed { at: total(2) },
            SdcError::SmallValuePublished { at: cell(0, 0) },
            SdcError::WithheldButPublished { at: total(0) },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.ends_with('.'), "{text}");
            assert!(
                text.chars().next().is_some_and(char::is_uppercase),
                "{text}"
            );
        }
    }

    /// Deterministic pseudo-random counts, mostly small.
    fn lcg_grid(rows: usize, cols: usize, seed: u64) -> Grid {
        let mut x = seed;
        let cells = (0..rows * cols)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                match (x >> 33) % 10 {
                    0..=2 => 0,
                    3..=5 => 1,
                    6 | 7 => 2,
                    8 => 3,
                    _ => 4 + (x >> 40) % 20,
                }
            })
            .collect();
        Grid { rows, cols, cells }
    }

    #[test]
    fn largest_table_finishes() {
        let g = lcg_grid(MAX_ROWS, MAX_COLS, 7);
        let start = std::time::Instant::now();
        let p = protect(&g, 5).unwrap();
        let elapsed = start.elapsed();
        assert!(audit(&g, &p).unwrap().is_empty());
        assert!(!p.withheld, "a dense table should be protectable");
        let hidden = p.cells.iter().filter(|c| c.is_none()).count();
        eprintln!("64x32: {hidden} cells hidden in {elapsed:?}");
    }

    #[test]
    fn largest_table_worst_cases_finish() {
        // Everything primary, and a table of ones (no cell can shrink).
        let dense = lcg_grid(MAX_ROWS, MAX_COLS, 11);
        let ones = grid(MAX_ROWS, MAX_COLS, &[1; MAX_ROWS * MAX_COLS]);
        for (g, threshold) in [(dense, u64::MAX), (ones, 2)] {
            let start = std::time::Instant::now();
            let p = protect(&g, threshold).unwrap();
            assert!(audit(&g, &p).unwrap().is_empty());
            eprintln!(
                "64x32 worst case: withheld {} in {:?}",
                p.withheld,
                start.elapsed()
            );
        }
        // A table of ones can never be protected: every value is pinned.
        let ones = grid(MAX_ROWS, MAX_COLS, &[1; MAX_ROWS * MAX_COLS]);
        assert!(protect(&ones, 2).unwrap().withheld);
    }

    // ----- Property tests ---------------------------------------------------

    const BUDGET: u64 = 300_000;

    /// Tallies kept across the cases of one property test.
    #[derive(Default)]
    struct Tally {
        /// Cases where brute force ran out of budget.
        skipped: AtomicUsize,
        /// Audit cases with both disclosed and protected suppressed values.
        mixed: AtomicUsize,
        /// Protect cases that ended withheld.
        withheld: AtomicUsize,
    }

    impl Tally {
        fn bump(counter: &AtomicUsize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn small_value() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => Just(0u64),
            4 => Just(1u64),
            3 => Just(2u64),
            2 => Just(3u64),
            1 => 4u64..=7,
        ]
    }

    fn table(max_rows: usize, max_cols: usize) -> impl Strategy<Value = Grid> {
        (1..=max_rows, 1..=max_cols).prop_flat_map(|(rows, cols)| {
            proptest::collection::vec(small_value(), rows * cols).prop_map(move |cells| Grid {
                rows,
                cols,
                cells,
            })
        })
    }

    fn table_and_pattern() -> impl Strategy<Value = (Grid, Vec<bool>, Vec<bool>)> {
        table(4, 4).prop_flat_map(|g| {
            let (n, c) = (g.cells.len(), g.cols);
            (
                Just(g),
                proptest::collection::vec(any::<bool>(), n),
                proptest::collection::vec(any::<bool>(), c),
            )
        })
    }

    /// Column totals computed independently of the module.
    fn true_column_totals(g: &Grid) -> Vec<u64> {
        (0..g.cols)
            .map(|c| (0..g.rows).map(|r| g.cells[r * g.cols + c]).sum())
            .collect()
    }

    /// Every non-zero interior cell and column total of `g`.
    fn nonzero_positions(g: &Grid) -> Vec<Where> {
        let cells = (0..g.cells.len())
            .filter(|&i| g.cells[i] > 0)
            .map(|i| cell(i / g.cols, i % g.cols));
        let totals = true_column_totals(g)
            .into_iter()
            .enumerate()
            .filter(|&(_, v)| v > 0)
            .map(|(c, _)| total(c));
        cells.chain(totals).collect()
    }

    /// Runs `check` on `cases` generated values; asserts brute force was
    /// skipped (budget exhausted) in at most 5% of them.
    fn run_with_tally<S: Strategy>(
        name: &str,
        strategy: S,
        cases: u32,
        check: impl Fn(S::Value, &Tally) -> Result<(), TestCaseError>,
    ) -> Tally {
        let tally = Tally::default();
        let config = ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, |v| check(v, &tally)) {
            panic!("{name}: {e}");
        }
        let skipped = tally.skipped.load(Ordering::Relaxed);
        eprintln!(
            "{name}: {cases} cases, brute force skipped {skipped}, mixed {}, withheld {}",
            tally.mixed.load(Ordering::Relaxed),
            tally.withheld.load(Ordering::Relaxed)
        );
        assert!(
            skipped * 20 <= cases as usize,
            "{name}: brute force skipped {skipped}"
        );
        tally
    }

    #[test]
    fn audit_agrees_with_brute_force() {
        let tally = run_with_tally(
            "audit",
            table_and_pattern(),
            1024,
            |(g, cell_bits, col_bits), tally| {
                let hidden: Vec<Where> = nonzero_positions(&g)
                    .into_iter()
                    .filter(|at| match *at {
                        Where::Cell { row, col } => cell_bits[row * g.cols + col],
                        Where::ColumnTotal { col } => col_bits[col],
                    })
                    .collect();
                let p = publish(&g, 1, hidden.iter().copied());
                let fast = audit(&g, &p).unwrap();
                if !fast.is_empty() && fast.len() < hidden.len() {
                    Tally::bump(&tally.mixed);
                }
                match disclosed_by_brute_force(&g, &p, BUDGET) {
                    Some(slow) => prop_assert_eq!(fast, slow, "{:?}", p),
                    None => Tally::bump(&tally.skipped),
                }
                Ok(())
            },
        );
        // The generator must produce cases where the audit discriminates.
        assert!(tally.mixed.load(Ordering::Relaxed) >= 50);
    }

    /// Raises each row total in `1..threshold` to `threshold` (the caller's
    /// precondition: small rows are merged before protection).
    fn merge_small_rows(mut g: Grid, threshold: u64) -> Grid {
        for row in g.cells.chunks_mut(g.cols) {
            let sum: u64 = row.iter().sum();
            if (1..threshold).contains(&sum)
                && let Some(v) = row.iter_mut().find(|v| **v > 0)
            {
                *v += threshold - sum;
            }
        }
        g
    }

    /// Checks the output of `protect` on `g`.
    fn check_protect(g: &Grid, threshold: u64, tally: &Tally) -> Result<(), TestCaseError> {
        let p = protect(g, threshold).unwrap();
        if p.withheld {
            Tally::bump(&tally.withheld);
        }
        let cols_true = true_column_totals(g);
        prop_assert_eq!(p.rows, g.rows);
        prop_assert_eq!(p.cols, g.cols);
        let rows_true: Vec<u64> = g.cells.chunks(g.cols).map(|r| r.iter().sum()).collect();
        prop_assert_eq!(&p.row_totals, &rows_true);
        prop_assert_eq!(p.total, g.cells.iter().sum::<u64>());
        let pairs = p
            .cells
            .iter()
            .zip(&g.cells)
            .chain(p.column_totals.iter().zip(&cols_true));
        for (shown, &value) in pairs {
            if value >= 1 && value < threshold {
                prop_assert!(shown.is_none(), "primary {} published", value);
            }
            if p.withheld {
                prop_assert!(shown.is_none());
            } else if value == 0 {
                prop_assert_eq!(*shown, Some(0));
            }
            if let Some(v) = shown {
                prop_assert_eq!(*v, value);
            }
        }
        prop_assert!(audit(g, &p).unwrap().is_empty());
        if g.cells.len() > 16 {
            return Ok(());
        }
        // Brute force on what is published; if withheld, on the most
        // suppressed table allowed, which must then really disclose something.
        let (q, expect_safe) = if p.withheld {
            (publish(g, 1, nonzero_positions(g)), false)
        } else {
            (p, true)
        };
        match disclosed_by_brute_force(g, &q, BUDGET) {
            Some(slow) => prop_assert_eq!(slow.is_empty(), expect_safe, "{:?}", slow),
            None => Tally::bump(&tally.skipped),
        }
        Ok(())
    }

    #[test]
    fn protect_is_safe() {
        run_with_tally(
            "protect",
            (table(6, 6), 2u64..=5),
            512,
            |(g, threshold), tally| check_protect(&g, threshold, tally),
        );
    }

    #[test]
    fn protect_is_safe_on_merged_tables() {
        let tally = run_with_tally(
            "protect merged",
            (table(6, 6), 2u64..=5),
            512,
            |(g, threshold), tally| {
                check_protect(&merge_small_rows(g, threshold), threshold, tally)
            },
        );
        // Withholding must stay the exception when rows are merged.
        assert!(tally.withheld.load(Ordering::Relaxed) * 4 <= 512);
    }
}
