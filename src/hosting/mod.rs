//! Sites, projects and their provisioning: the site lifecycle (`lifecycle`, pure), the
//! records a site needs (`records`, pure), the operations that apply them in store
//! transactions (`ops`, and `ssl` for certificates), the `Provisioner` that does the platform
//! side of each step, the worker that runs durable jobs, and the scheduler that asks for
//! certificate renewals (`renewal`).

pub mod lifecycle;
pub mod ops;
mod provisioner;
pub mod records;
mod renewal;
pub mod ssl;
mod worker;

pub use lifecycle::Request;
pub use provisioner::{Builtin, Exec, Provisioner, provisioner};
pub use renewal::schedule_renewals;
pub use worker::{Hands, Jobs, start};
