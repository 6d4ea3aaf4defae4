//! One handler per topic. A handler decides what a message means and queues
//! the resulting frames on the connections concerned.

pub mod event;
pub mod presence;
pub mod record;
pub mod rpc;

/// Returns the names of a bulk message: `names`, or the single `name` when
/// `names` is empty.
pub(crate) fn bulk_names(names: Vec<String>, name: String) -> Vec<String> {
    if names.is_empty() && !name.is_empty() {
        vec![name]
    } else {
        names
    }
}
