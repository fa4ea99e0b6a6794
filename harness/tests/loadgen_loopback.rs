//! The load generator against a real HTTP server on 127.0.0.1:0, and its coordinated-
//! omission correction under a real stall. Bounded: a few dozen requests, on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use harness::loadgen::{LoadConfig, run_step};

/// Starts a server that counts hits and fails keys divisible by 5; returns its base URL,
/// the hit counter and the sender that shuts it down.
async fn start_server() -> (String, Arc<AtomicU64>, tokio::sync::oneshot::Sender<()>) {
    let hits = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/webhook/{key}",
            post(
                |State(hits): State<Arc<AtomicU64>>, Path(key): Path<u64>| async move {
                    hits.fetch_add(1, Ordering::Relaxed);
                    if key % 5 == 4 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}"), hits, stop)
}

#[tokio::test]
async fn drives_a_loopback_http_server_open_loop() {
    let (base, hits, stop) = start_server().await;
    let client = reqwest::Client::new();
    let cfg = LoadConfig {
        drain_timeout: Duration::from_secs(10),
        ..LoadConfig::new(Duration::from_millis(500))
    };
    let report = run_step(40.0, &cfg, |i| {
        let request = client.post(format!("{base}/webhook/{i}"));
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", response.status()))
            }
        }
    })
    .await
    .unwrap();
    let _ = stop.send(());

    assert_eq!(report.scheduled, 20);
    assert_eq!(hits.load(Ordering::Relaxed), 20);
    // Keys 4, 9, 14 and 19 fail on the server.
    assert_eq!((report.ok, report.errors, report.overflow), (16, 4, 0));
    assert_eq!(
        report.first_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert_eq!(report.latency.len(), 16);
}

/// The generator itself stalls for 200 ms when building request 10 (as a GC pause or an
/// overloaded client would). Requests 10..=20 were due at 100–200 ms but leave after the
/// stall, at ≥ 300 ms; measured from their intended send time, each waited ≥ 100 ms even
/// though the request itself is instant. Measuring from the actual send would hide this.
#[tokio::test]
async fn latency_includes_time_lost_to_a_stalled_generator() {
    let cfg = LoadConfig::new(Duration::from_millis(500));
    let report = run_step(100.0, &cfg, |i| {
        if i == 10 {
            std::thread::sleep(Duration::from_millis(200));
        }
        async { Ok::<(), String>(()) }
    })
    .await
    .unwrap();
    assert_eq!((report.scheduled, report.ok), (50, 50));
    let hist = report.latency.histogram();
    let delayed = hist.count_between(100_000, u64::MAX);
    assert!(delayed >= 11, "only {delayed} requests show the stall");
    assert!(report.latency.summary().max_us >= 199_000);
}
