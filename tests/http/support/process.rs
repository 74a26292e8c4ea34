//! Several Hallpass servers on one database: a second in-process server beside a
//! [`TestApp`], and real `hallpass` processes started from the built binary.

use super::{TestApp, TestDb};

/// The database of `app`, for a second server to start on (`TestApp::start_on`); give that
/// server `app`'s data directory too (`server.data_dir`), so that both hold one secret, as
/// the nodes of one deployment do.
pub fn same_database(app: &TestApp) -> TestDb {
    TestDb {
        url: app._db.url.clone(),
        _dir: None,
        data: tempfile::tempdir().unwrap(),
    }
}

/// A second in-process server on `app`'s database and data directory, with `tweak`.
pub async fn beside(app: &TestApp, tweak: impl FnOnce(&mut hallpass::config::Config)) -> TestApp {
    let data = app.data_dir().to_owned();
    TestApp::start_on(
        same_database(app),
        move |c| {
            tweak(c);
            c.server.data_dir = data;
        },
        false,
    )
    .await
}
