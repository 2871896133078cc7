//! What the running inputs and outputs share on the one executor thread.

use super::hub::Hub;
use super::metric::SeriesTable;
use super::stats::AgentStats;
use std::cell::RefCell;
use std::rc::Rc;

/// Shared by every input and output task: inputs intern series in the table and publish
/// through the hub; outputs read series names from the table when they write; both count
/// in the stats.
pub struct Shared {
    pub table: Rc<RefCell<SeriesTable>>,
    pub hub: Rc<Hub>,
    pub stats: Rc<AgentStats>,
}
