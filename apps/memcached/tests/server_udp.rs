//! The UDP side, in process: memcached's 8-byte frames, multi-datagram
//! replies, dropped multi-datagram requests, and keys of both shards.

mod support;

use support::{Server, UdpClient, config, key_on};

fn udp_server(shards: usize) -> Server {
    let mut cfg = config();
    cfg.udp = Some("127.0.0.1:0".parse().unwrap());
    Server::start(shards, cfg)
}

#[test]
fn a_request_gets_its_reply_in_a_framed_datagram() {
    let server = udp_server(1);
    let udp = UdpClient::connect(server.udp.unwrap());
    udp.send(0xBEEF, 0, 1, b"set k 3 0 2\r\nhi\r\nget k\r\n");
    let d = udp.recv();
    assert_eq!(
        d,
        b"\xBE\xEF\x00\x00\x00\x01\x00\x00STORED\r\nVALUE k 3 2\r\nhi\r\nEND\r\n"
    );
    assert_eq!(udp.ask(7, "version\r\n"), "VERSION 1.6.21\r\n");
}

#[test]
fn long_replies_span_numbered_datagrams_of_at_most_1400_bytes_with_header() {
    let server = udp_server(2);
    let udp = UdpClient::connect(server.udp.unwrap());
    let value: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let [a, b] = [key_on(0, 2, "u"), key_on(1, 2, "u")];
    for k in [&a, &b] {
        let set = format!("set {k} 0 0 {}\r\n{value}\r\n", value.len());
        assert_eq!(udp.ask(1, &set), "STORED\r\n");
    }
    udp.send(2, 0, 1, format!("get {a} {b}\r\n").as_bytes());
    let (reply, count) = udp.recv_reply(2);
    let want = format!("VALUE {a} 0 5000\r\n{value}\r\nVALUE {b} 0 5000\r\n{value}\r\nEND\r\n");
    assert_eq!(String::from_utf8(reply).unwrap(), want);
    assert_eq!(count, want.len().div_ceil(1400 - 8));
}

#[test]
fn multi_datagram_requests_and_runts_are_dropped() {
    let server = udp_server(1);
    let udp = UdpClient::connect(server.udp.unwrap());
    udp.send(1, 0, 2, b"set k 0 0 1\r\n");
    udp.send(1, 1, 2, b"x\r\n");
    udp.sock.send(&[0, 9, 0, 0]).unwrap();
    udp.send(3, 0, 1, b"");
    // The first reply to come is the next valid request's: nothing was stored.
    assert_eq!(udp.ask(4, "get k\r\n"), "END\r\n");
}

#[test]
fn noreply_requests_send_no_datagram() {
    let server = udp_server(2);
    let udp = UdpClient::connect(server.udp.unwrap());
    let [a, b] = [key_on(0, 2, "n"), key_on(1, 2, "n")];
    udp.send(
        5,
        0,
        1,
        format!("set {a} 0 0 1 noreply\r\n1\r\nset {b} 0 0 1 noreply\r\n2\r\n").as_bytes(),
    );
    assert_eq!(
        udp.ask(6, &format!("get {a} {b}\r\n")),
        format!("VALUE {a} 0 1\r\n1\r\nVALUE {b} 0 1\r\n2\r\nEND\r\n")
    );
}

#[test]
fn udp_and_tcp_share_the_store_and_the_stats() {
    let server = udp_server(2);
    let udp = UdpClient::connect(server.udp.unwrap());
    assert_eq!(udp.ask(1, "set shared 0 0 2\r\nok\r\n"), "STORED\r\n");
    let mut c = server.client();
    c.expect("get shared\r\n", "VALUE shared 0 2\r\nok\r\nEND\r\n");
    let stats = udp.ask(2, "stats\r\n");
    assert!(stats.contains("STAT cmd_set 1\r\n"), "{stats}");
    let settings = udp.ask(3, "stats settings\r\n");
    let port = server.udp.unwrap().port();
    assert!(
        settings.contains(&format!("STAT udpport {port}\r\n")),
        "{settings}"
    );
}

/// The socket-free UDP path with a small cap: a datagram naming many keys
/// answers the values that fit under the cap (the one crossing it
/// included), then memcached's out-of-memory line instead of `END`, and
/// runs none of the datagram's later requests.
#[test]
fn udp_reply_is_cut_at_the_cap() {
    use memcached::server::udp::{CUT_LINE, HEADER_LEN, Responder};
    let reply = seastar_core::block_on(async {
        let config = memcached::server::Config {
            udp_reply_max: 4096,
            ..memcached::server::Config::default()
        };
        let mut r = Responder::start(config).await.unwrap();
        let frame = |body: &[u8]| {
            let mut d = vec![0, 9, 0, 0, 0, 1, 0, 0];
            d.extend_from_slice(body);
            d
        };
        let value = "v".repeat(1000);
        let set = format!("set k 0 0 1000\r\n{value}\r\n");
        assert_eq!(
            &r.answer(&frame(set.as_bytes())).await[0][HEADER_LEN..],
            b"STORED\r\n"
        );
        let get = format!(
            "get {}\r\nset late 0 0 1\r\nx\r\n",
            vec!["k"; 100].join(" ")
        );
        let mut payload = Vec::new();
        for d in r.answer(&frame(get.as_bytes())).await {
            payload.extend_from_slice(&d[HEADER_LEN..]);
        }
        let late = r.answer(&frame(b"get late\r\n")).await;
        assert_eq!(
            &late[0][HEADER_LEN..],
            b"END\r\n",
            "later requests did not run"
        );
        r.stop().await;
        payload
    });
    let block = format!("VALUE k 0 1000\r\n{}\r\n", "v".repeat(1000));
    // 4 values reach 4,072 bytes, under the cap; the 5th crosses it.
    let mut want = block.repeat(5).into_bytes();
    want.extend_from_slice(CUT_LINE);
    assert_eq!(reply, want);
}

/// On two shards, a datagram naming more keys of the other shard than one
/// forwarding step takes (128) is answered whole: only the reply cap cuts
/// a UDP reply.
#[test]
fn many_forwarded_keys_are_not_cut_below_the_cap() {
    let server = udp_server(2);
    let udp = UdpClient::connect(server.udp.unwrap());
    let [a, b] = [key_on(0, 2, "f"), key_on(1, 2, "f")];
    for k in [&a, &b] {
        assert_eq!(udp.ask(1, &format!("set {k} 0 0 1\r\nv\r\n")), "STORED\r\n");
    }
    let names: Vec<&str> = (0..600)
        .map(|i| if i % 2 == 0 { &a[..] } else { &b[..] })
        .collect();
    udp.send(2, 0, 1, format!("get {}\r\n", names.join(" ")).as_bytes());
    let (reply, _) = udp.recv_reply(2);
    let want: String = names
        .iter()
        .map(|k| format!("VALUE {k} 0 1\r\nv\r\n"))
        .collect::<String>()
        + "END\r\n";
    assert_eq!(String::from_utf8(reply).unwrap(), want);
}
