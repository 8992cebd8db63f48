//! Live capture on the loopback interface, for real: a server on
//! 127.0.0.1, MCP and non-MCP requests, SIGINT to stop. Runs only in builds
//! with the `live` feature (`.ci/run` builds it, as root).
#![cfg(feature = "live")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny HTTP/1.1 server answering every request with a JSON body.
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Read the head and a Content-Length body.
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            });
        }
    });
    port
}

fn request(port: u16, text: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn live_capture_on_loopback_alerts_on_mcp_and_flushes_on_sigint() {
    let port = serve();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args([
            "live",
            "-i",
            "lo",
            "--bpf",
            &format!("tcp port {port}"),
            "--all",
            "--threads",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    if !line.contains("capturing on lo") {
        let _ = child.wait();
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        let all = format!("{line}{rest}");
        if all.contains("permitted") || all.contains("ermission") {
            eprintln!("SKIPPED: capturing on lo is not permitted here: {all}");
            return;
        }
        panic!("shadowmcp live did not start: {all}");
    }
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}"#;
    request(
        port,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: mcp.shadow-vendor.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    request(
        port,
        "GET /index.html HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
    );
    // Give the capture a moment to see the last packets, then stop it the
    // way an operator would.
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let output = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            break (status, out);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "shadowmcp live did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(output.0.success(), "exit {:?}: {rest}", output.0);
    let events: Vec<serde_json::Value> = output
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{events:?}");
    assert_eq!(alerts[0]["mcp"]["methods"][0], "tools/call");
    assert_eq!(alerts[0]["mcp"]["tools_called"][0]["name"], "read_file");
    assert!(alerts[0]["mcp"]["tools_called"][0]
        .get("arguments")
        .is_none());
    assert_eq!(alerts[0]["dest_port"], port);
    let http: Vec<_> = events
        .iter()
        .filter(|e| e["event_type"] == "http")
        .collect();
    assert_eq!(http.len(), 1, "{events:?}");
    assert_eq!(http[0]["http"]["url"], "/index.html");
    assert!(
        rest.contains("1 MCP"),
        "the summary is printed after SIGINT: {rest}"
    );
}
