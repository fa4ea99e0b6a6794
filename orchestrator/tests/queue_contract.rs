//! The queue's contract, on every backend: what [`Tx::poll`], [`Tx::push`] and
//! [`Tx::commit`] promise the executor, the workers and the indexer, as Kestra's `JdbcQueue`
//! promises its consumers. Each case becomes `sqlite::…`, `postgres::…`, `mysql::…` and
//! `mssql::…` (see `backend_common` for how a missing server is skipped).
//!
//! * `two_consumers_never_receive_the_same_message`: two consumers, each with a store of its
//!   own, drain one queue concurrently; together they receive every message exactly once.
//! * `each_keys_messages_arrive_in_push_order`: a consumer polling in batches sees each
//!   key's messages in the order they were pushed.
//! * `a_commit_wakes_consumers_of_another_store`: on PostgreSQL the commit of a push wakes
//!   the [`Notifier`] of a store connected separately (LISTEN/NOTIFY). The other backends
//!   have no cross-store wake-up: their consumers find the message on their next poll.
//! * `a_commit_wakes_its_own_stores_consumers_of_what_it_pushed`: in one process, the
//!   commit itself wakes the consumers of the queues it pushed to, once, and only those; a
//!   transaction dropped without commit wakes nobody.
//! * `a_consumer_killed_mid_batch_loses_nothing`: a batch polled by a consumer that dies
//!   before committing goes, whole, to the next consumer.

#[macro_use]
mod backend_common;

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backend_common::{Backend, TestDb};
use orchestrator::knobs::Knobs;
use orchestrator::repository::{self, Message, Notifier, Polled, QueueType, Store};
use tokio::sync::futures::Notified;

on_every_backend!(
    two_consumers_never_receive_the_same_message,
    each_keys_messages_arrive_in_push_order,
    a_commit_wakes_consumers_of_another_store,
    a_commit_wakes_its_own_stores_consumers_of_what_it_pushed,
    a_consumer_killed_mid_batch_loses_nothing,
);

/// The kind every message of these tests has.
const KIND: QueueType = QueueType::WorkerTask;

/// Opens another store on the test's database, as another process would.
async fn open(db: &TestDb) -> Arc<dyn Store> {
    open_url(db, &db.url).await
}

async fn open_url(db: &TestDb, url: &str) -> Arc<dyn Store> {
    repository::connect(url, &Knobs::default())
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", db.backend))
}

/// A message of [`KIND`] whose value carries its sequence number.
fn message(key: &str, seq: usize) -> Message {
    Message {
        kind: KIND,
        key: key.to_string(),
        value: format!(r#"{{"seq": {seq}}}"#),
    }
}

/// `n` messages of distinct keys, `m0` to `m{n-1}`, and their `(key, seq)`.
fn numbered(n: usize) -> (Vec<Message>, Vec<(String, usize)>) {
    let ids: Vec<(String, usize)> = (0..n).map(|i| (format!("m{i}"), i)).collect();
    (ids.iter().map(|(k, s)| message(k, *s)).collect(), ids)
}

/// The sequence number of a polled [`message`]. The value is read as JSON, since
/// PostgreSQL's JSONB and MariaDB's JSON hand back their own spelling of it.
fn seq(p: &Polled) -> usize {
    let v: serde_json::Value = serde_json::from_str(&p.value)
        .unwrap_or_else(|e| panic!("message {} has value {:?}: {e}", p.offset, p.value));
    v["seq"].as_u64().expect("a seq number") as usize
}

/// `(key, seq)` of each polled message, to compare with what was pushed.
fn identities(polled: &[Polled]) -> Vec<(String, usize)> {
    polled.iter().map(|p| (p.key.clone(), seq(p))).collect()
}

/// A fresh database on `backend` (`None`: skipped), a store on it, and the `(key, seq)` of
/// the `n` [`numbered`] messages pushed through that store in one transaction.
async fn backlog(
    backend: Backend,
    n: usize,
) -> Option<(TestDb, Arc<dyn Store>, Vec<(String, usize)>)> {
    let db = TestDb::create(backend).await?;
    let store = open(&db).await;
    let (messages, ids) = numbered(n);
    push(&*store, &messages).await;
    Some((db, store, ids))
}

async fn push(store: &dyn Store, messages: &[Message]) {
    let mut tx = store.begin().await.unwrap();
    tx.push(messages).await.unwrap();
    tx.commit().await.unwrap();
}

/// One poll of `limit` messages in a transaction of its own, committed.
async fn poll_committed(store: &dyn Store, limit: usize) -> Vec<Polled> {
    let mut tx = store.begin().await.unwrap();
    let batch = tx.poll(&[KIND], limit).await.unwrap();
    tx.commit().await.unwrap();
    batch
}

/// Polls batches of `limit`, one committed transaction each, until a poll comes back empty
/// or more than `cap` messages came (a queue that hands messages out again never empties).
async fn drain(store: &dyn Store, limit: usize, cap: usize) -> Vec<Polled> {
    let mut got = Vec::new();
    while got.len() <= cap {
        let batch = poll_committed(store, limit).await;
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    got
}

/// Kestra's `JdbcQueue#receive` locks the rows it takes (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL and MariaDB; SQLite's one writer at a time), so that executors and workers can
/// run as several processes. Each consumer here has a store of its own, as a process would,
/// and holds each batch open a moment before committing, so that the other's polls land
/// while rows are held.
async fn two_consumers_never_receive_the_same_message(backend: Backend) {
    const N: usize = 200;
    const BATCH: usize = 5;
    let Some((db, _producer, expected)) = backlog(backend, N).await else {
        return;
    };

    let start = Arc::new(tokio::sync::Barrier::new(2));
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let store = open(&db).await;
        let start = start.clone();
        consumers.push(tokio::spawn(async move {
            start.wait().await;
            let mut got = Vec::new();
            while got.len() <= N {
                let mut tx = store.begin().await.unwrap();
                let batch = tx.poll(&[KIND], BATCH).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                tx.commit().await.unwrap();
                got.extend(identities(&batch));
                // A turn for the other consumer, which SQLite's busy wait could miss.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            got
        }));
    }
    let mut received = Vec::new();
    for c in consumers {
        received.push(c.await.expect("a consumer task"));
    }
    let sets: Vec<HashSet<&(String, usize)>> =
        received.iter().map(|r| r.iter().collect()).collect();
    for (i, (r, s)) in received.iter().zip(&sets).enumerate() {
        assert_eq!(
            r.len(),
            s.len(),
            "{backend:?}: consumer {i} received a message twice"
        );
    }
    let both: Vec<_> = sets[0].intersection(&sets[1]).collect();
    assert!(
        both.is_empty(),
        "{backend:?}: {} messages went to both consumers, e.g. {:?}",
        both.len(),
        &both[..both.len().min(5)]
    );
    let union: HashSet<&(String, usize)> = received.iter().flatten().collect();
    let expected: HashSet<&(String, usize)> = expected.iter().collect();
    assert_eq!(
        union, expected,
        "{backend:?}: the union is not what was pushed"
    );
    // Both took part, so the polls did overlap: one consumer draining the queue alone would
    // prove nothing.
    assert!(
        received.iter().all(|r| !r.is_empty()),
        "{backend:?}: one consumer received everything ({} and {})",
        received[0].len(),
        received[1].len()
    );
}

/// Kestra's executor relies on receiving an execution's messages in the order they were
/// sent (a task run's result after its creation). Messages of four keys are pushed
/// interleaved, in five transactions; a consumer polling batches of 7 (which cut across the
/// transactions) must see each key's messages in push order.
async fn each_keys_messages_arrive_in_push_order(backend: Backend) {
    const KEYS: [&str; 4] = ["a", "b", "c", "d"];
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open(&db).await;
    let mut pushed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut n = 0;
    for t in 0..5 {
        let messages: Vec<Message> = (0..12)
            .map(|i| {
                // An uneven interleaving: runs of one key, and keys missing from a transaction.
                let key = KEYS[(i * i + t) % KEYS.len()];
                n += 1;
                pushed.entry(key).or_default().push(n);
                message(key, n)
            })
            .collect();
        push(&*store, &messages).await;
    }
    let got = drain(&*store, 7, n).await;
    let mut received: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for p in &got {
        let key = KEYS
            .into_iter()
            .find(|k| *k == p.key)
            .unwrap_or_else(|| panic!("{backend:?}: a message of key {:?} came", p.key));
        received.entry(key).or_default().push(seq(p));
    }
    assert_eq!(got.len(), n, "{backend:?}: every message, once");
    assert_eq!(
        received, pushed,
        "{backend:?}: each key's messages in push order"
    );
}

/// A producer's commit wakes the consumers of another store (another process, in a
/// deployment) for that kind of message. On PostgreSQL `push` sends a NOTIFY on the kind's
/// channel, which the database delivers at commit, and each store's listener relays it to
/// its [`Notifier`]. SQLite, MariaDB and SQL Server have no such channel: a component wakes
/// only its own store's notifier after it commits (the executor's and the worker's `notify`
/// calls), so a consumer of another store finds the message on its next poll, within the
/// poll back-off (`Timing::max_poll`). What is checked there is exactly that: the other
/// store's notifier stays quiet, and its poll receives the message.
async fn a_commit_wakes_its_own_stores_consumers_of_what_it_pushed(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = open(&db).await;
    let notifier = store.notifier();
    if backend == Backend::Postgres {
        // The store's listener wakes every kind once it LISTENs: let it, then wait for quiet.
        fired(&mut watch(notifier, KIND), Duration::from_secs(10)).await;
        quiet(notifier).await;
    }
    // Each wake-up is registered before the action it watches, as a consumer registers one
    // before it polls.
    let mut waiter = watch(notifier, KIND);
    let mut logs = watch(notifier, QueueType::Log);
    let mut tx = store.begin().await.unwrap();
    tx.push(&[message("dropped", 0)]).await.unwrap();
    drop(tx);
    assert!(
        !fired(&mut waiter, Duration::from_millis(300)).await,
        "{backend:?}: a transaction dropped without commit woke the consumers"
    );
    let mut tx = store.begin().await.unwrap();
    tx.push(&[message("k", 1)]).await.unwrap();
    assert!(
        !fired(&mut waiter, Duration::from_millis(300)).await,
        "{backend:?}: woken before the push committed"
    );
    tx.commit().await.unwrap();
    assert!(
        fired(&mut waiter, Duration::from_secs(2)).await,
        "{backend:?}: the commit did not wake its own store's consumers"
    );
    // Once: nothing is left behind to wake a consumer that registers after the commit (it
    // polls first), and on PostgreSQL the store's listener skips its own NOTIFY, which would
    // only make the consumers poll again and find nothing.
    assert!(
        !fired(&mut watch(notifier, KIND), Duration::from_millis(500)).await,
        "{backend:?}: the commit woke its own store's consumers twice"
    );
    assert!(
        !fired(&mut logs, Duration::from_millis(100)).await,
        "{backend:?}: a push of {KIND:?} woke the consumers of logs"
    );
    assert_eq!(
        identities(&poll_committed(&*store, 10).await),
        [("k".to_string(), 1)],
        "{backend:?}: only the committed message is there"
    );
}

async fn a_commit_wakes_consumers_of_another_store(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let consumer = open(&db).await;
    let notifier = consumer.notifier();
    // Registered at once, so that the wake-up the listener gives when it starts is not missed.
    let mut started = watch(notifier, KIND);
    let producer = open(&db).await;
    let notifies = backend == Backend::Postgres;
    if notifies {
        // The listener wakes every kind once it LISTENs; wait for that, then for quiet.
        assert!(
            fired(&mut started, Duration::from_secs(10)).await,
            "the second store's listener never started"
        );
        quiet(notifier).await;
    } else {
        eprintln!(
            "{backend:?} has no cross-store wake-up (no LISTEN/NOTIFY): checking that the other \
             store's notifier stays quiet and that its poll receives the commit"
        );
    }
    let mut waiter = watch(notifier, KIND);
    let mut logs = watch(notifier, QueueType::Log);
    let mut tx = producer.begin().await.unwrap();
    tx.push(&[message("k", 1)]).await.unwrap();
    assert!(
        !fired(&mut waiter, Duration::from_millis(300)).await,
        "{backend:?}: woken before the push committed"
    );
    tx.commit().await.unwrap();
    if notifies {
        assert!(
            fired(&mut waiter, Duration::from_secs(10)).await,
            "{backend:?}: the commit's NOTIFY did not wake the other store"
        );
        assert!(
            !fired(&mut logs, Duration::from_millis(300)).await,
            "{backend:?}: a push of {KIND:?} woke the consumers of logs"
        );
    } else {
        assert!(
            !fired(&mut waiter, Duration::from_millis(300)).await,
            "{backend:?}: the other store was woken: this backend now has a cross-store \
             wake-up, and this test should say so"
        );
    }
    let got = poll_committed(&*consumer, 10).await;
    assert_eq!(
        identities(&got),
        [("k".to_string(), 1)],
        "{backend:?}: the other store's poll receives the committed message"
    );
}

/// A wake-up for `kind`, registered now.
fn watch(notifier: &Notifier, kind: QueueType) -> Pin<Box<Notified<'_>>> {
    let mut waiter = Box::pin(notifier.notified(kind));
    waiter.as_mut().enable();
    waiter
}

/// Whether `waiter` fires within `within`; it stays registered either way.
async fn fired(waiter: &mut Pin<Box<Notified<'_>>>, within: Duration) -> bool {
    tokio::time::timeout(within, waiter.as_mut()).await.is_ok()
}

/// Waits until no kind has been woken for 200 ms.
async fn quiet(notifier: &Notifier) {
    for kind in QueueType::ALL {
        while fired(&mut watch(notifier, kind), Duration::from_millis(200)).await {}
    }
}

/// Consuming a message and producing its effects is one transaction, so a consumer that dies
/// mid-batch loses nothing (Kestra's `JdbcQueue`, and the README's guarantee). The consumer
/// has a store of its own and polls 10 of 30 messages. On a server another consumer
/// meanwhile takes the other 20 and none of the 10; then PostgreSQL or MariaDB ends the dying
/// consumer's session as if its process were killed (the client sends no ROLLBACK). SQLite
/// has one writer, so there (and on SQL Server) the consumer's transaction and store are
/// dropped uncommitted, which rolls back. Either way the next consumer then receives every one
/// of the 10.
async fn a_consumer_killed_mid_batch_loses_nothing(backend: Backend) {
    const N: usize = 30;
    const BATCH: usize = 10;
    let Some((db, survivor, all)) = backlog(backend, N).await else {
        return;
    };
    let tag = format!("fb_killed_{}", uuid::Uuid::new_v4().simple());
    let dying = match backend {
        // The application name finds the session to end among the server's others.
        Backend::Postgres => open_url(&db, &format!("{}&application_name={tag}", db.url)).await,
        _ => open(&db).await,
    };
    // The dialect's own transaction, which does not borrow its store: both are held on.
    let mut tx = dying.begin_tx().await.unwrap();
    let held = identities(&tx.poll(&[KIND], BATCH).await.unwrap());
    assert_eq!(
        held,
        all[..BATCH],
        "{backend:?}: the oldest messages, in order"
    );

    let (received, order) = if backend == Backend::Sqlite {
        drop(tx);
        drop(dying);
        (receive(&*survivor, N, backend).await, all)
    } else {
        let others = tokio::time::timeout(Duration::from_secs(10), poll_committed(&*survivor, N))
            .await
            .unwrap_or_else(|_| panic!("{backend:?}: a poll waited on the held batch"));
        let mut received = identities(&others);
        assert_eq!(
            received,
            all[BATCH..],
            "{backend:?}: while one consumer holds a batch, another takes the rest and none of it"
        );
        // Kept until the end where the server ends the session: the rows must come back
        // without this side's rollback. SQL Server's sessions are out of this file's reach
        // (its driver is behind the `mssql` feature): there they are dropped uncommitted.
        let _dead = if matches!(backend, Backend::Postgres | Backend::Mysql) {
            end_session(&db, &tag).await;
            Some((tx, dying))
        } else {
            drop((tx, dying));
            None
        };
        received.extend(receive(&*survivor, BATCH, backend).await);
        (received, [&all[BATCH..], &all[..BATCH]].concat())
    };
    assert_eq!(
        received, order,
        "{backend:?}: every message once, the killed consumer's batch oldest first"
    );
    assert!(
        poll_committed(&*survivor, N).await.is_empty(),
        "{backend:?}: nothing left"
    );
}

/// Polls until `want` messages came, for up to 30 s: a server may take a moment to release
/// a dead session's locks.
async fn receive(store: &dyn Store, want: usize, backend: Backend) -> Vec<(String, usize)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        let batch = poll_committed(store, want - got.len()).await;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got.extend(identities(&batch));
    }
    assert_eq!(
        got.len(),
        want,
        "{backend:?}: messages of a dead consumer never came back"
    );
    got
}

/// Ends, from the server side, the one session that holds a transaction open: on PostgreSQL
/// the one named `tag`, on MariaDB the one in the test's database.
async fn end_session(db: &TestDb, tag: &str) {
    use sqlx::Connection as _;
    let ended = match db.backend {
        Backend::Postgres => {
            let mut admin = db.pg_connection().await;
            let (n,): (i64,) = sqlx::query_as(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND state = 'idle in transaction'",
            )
            .bind(tag)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            n
        }
        Backend::Mysql => {
            let mut admin = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            let ids: Vec<(u64,)> = sqlx::query_as(
                "SELECT t.trx_mysql_thread_id FROM information_schema.innodb_trx t \
                 JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
                 WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()",
            )
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for (id,) in &ids {
                sqlx::query(&format!("KILL CONNECTION {id}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
            ids.len() as i64
        }
        other => panic!("{other:?}: no server session to end"),
    };
    assert_eq!(
        ended, 1,
        "{:?}: sessions of the test's database holding a transaction; want the dying consumer's \
         alone (none: its poll did not hold the batch in a transaction)",
        db.backend
    );
}
