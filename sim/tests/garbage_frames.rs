//! Garbage bytes on a simulated connection: the broker closes that connection, records a
//! typed `malformed-frame` event, and keeps serving everyone else. Never a panic or hang.

use kafkasim::protocol::{
    encode_frame, Frame, FrameDecoder, MetadataRequest, Request, RequestFrame, Response,
};
use kafkasim::types::NodeId;
use madsim::net::TcpStream;
use madsim::runtime::{Handle, Runtime};
use sim::scenario::load;
use sim::world::disk::SimDisk;
use sim::world::{broker_node, node_ip, Role, World};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn garbage_closes_the_connection_and_the_broker_serves_on() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml");
    let scenario = load(&path).expect("quickstart parses");
    let runtime = Runtime::with_seed_and_config(9, madsim::Config::default());
    runtime.add_simulator::<SimDisk>();
    let events = runtime.block_on(async move {
        let world = Arc::new(World::new(scenario, 9));
        let handle = Handle::current();
        let broker_world = world.clone();
        handle
            .create_node()
            .name("broker-0")
            .ip(node_ip(Role::Broker, 0))
            .init(move || broker_node::broker_main(broker_world.clone(), 0))
            .build();
        let client =
            handle.create_node().name("rogue").ip(IpAddr::V4(Ipv4Addr::new(10, 0, 9, 1))).build();
        client
            .spawn(async move {
                madsim::time::sleep(Duration::from_millis(100)).await;
                // An absurd length prefix, then a well-sized frame of garbage.
                for garbage in [
                    vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                    vec![0, 0, 0, 5, 0xee, 0xee, 0xee, 0xee, 0xee],
                ] {
                    let mut stream =
                        TcpStream::connect(World::broker_addr(0)).await.expect("connects");
                    stream.write_all(&garbage).await.expect("writes");
                    stream.flush().await.expect("flushes");
                    let mut buf = [0u8; 16];
                    let read =
                        madsim::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                    assert!(
                        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                        "the broker kept a garbage connection open: {read:?}"
                    );
                }
                // A well-behaved client is still served.
                let mut stream = TcpStream::connect(World::broker_addr(0)).await.expect("connects");
                let request = RequestFrame {
                    correlation_id: 1,
                    client_id: NodeId(1_000),
                    body: Request::Metadata(MetadataRequest { topics: None }),
                };
                stream.write_all(&encode_frame(&Frame::Request(request))).await.expect("writes");
                stream.flush().await.expect("flushes");
                let mut decoder = FrameDecoder::new();
                loop {
                    stream.read_buf(decoder.buffer_mut()).await.expect("reads");
                    if let Some(frame) = decoder.next_frame().expect("a valid response") {
                        match frame {
                            Frame::Response(response) => {
                                assert!(matches!(response.body, Response::Metadata(_)));
                                break;
                            }
                            other => panic!("unexpected frame {other:?}"),
                        }
                    }
                }
            })
            .await
            .expect("the client task finishes");
        let state = world.state();
        state.events.iter().map(|e| (e.node.clone(), e.kind.clone())).collect::<Vec<_>>()
    });
    let malformed = events
        .iter()
        .filter(|(node, kind)| node == "broker-0" && kind == "malformed-frame")
        .count();
    assert_eq!(malformed, 2, "events: {events:?}");
}
