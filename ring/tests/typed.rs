//! Typed messages: values and slices sent and viewed in place, the alignment payloads are
//! guaranteed to have, clear errors for lengths that do not fit, and typed endpoints.

use bytemuck::{Pod, Zeroable};
use ringfile::{typed, Error, Ring};

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Tick {
    price: f64,
    qty: u32,
    side: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C, align(16))]
struct Wide([u64; 2]);

#[test]
fn every_payload_and_claim_is_8_byte_aligned_at_every_length_and_wrap() {
    // A small ring, so records wrap (with padding) at many offsets.
    let ring = Ring::memfd(256).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    for round in 0..2000usize {
        let len = (round * 7) % (ring.max_message_len() + 1);
        let mut claim = producer.claim(len).unwrap();
        assert_eq!(claim.as_ptr() as usize % ringfile::format::PAYLOAD_ALIGN, 0);
        claim.fill(round as u8);
        claim.commit();
        if round % 2 == 0 {
            let msg = consumer.recv().unwrap().unwrap();
            assert_eq!(msg.as_ptr() as usize % 8, 0, "message of {len} bytes");
            assert_eq!(msg.len(), len);
        } else {
            let mut batch = consumer.recv_batch().unwrap();
            let msg = batch.next().unwrap().unwrap();
            assert_eq!(msg.as_ptr() as usize % 8, 0, "batch message of {len} bytes");
        }
    }
}

#[test]
fn values_and_slices_round_trip_in_place() {
    let ring = Ring::memfd(4096).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    let tick = Tick {
        price: 101.25,
        qty: 7,
        side: 1,
    };
    producer.send_value(&tick).unwrap();
    producer.send(bytemuck::cast_slice(&[1u32, 2, 3])).unwrap();
    {
        let mut claim = producer.claim(3 * 16).unwrap();
        let ticks = claim.slice_mut::<Tick>().unwrap();
        for (i, t) in ticks.iter_mut().enumerate() {
            *t = Tick {
                price: i as f64,
                qty: i as u32,
                side: 0,
            };
        }
        claim.commit();
    }
    {
        let mut batch = producer.batch();
        batch.send_value(&Wide([5, 6])).unwrap();
    }

    assert_eq!(
        consumer.recv().unwrap().unwrap().value::<Tick>().unwrap(),
        &tick
    );
    assert_eq!(
        consumer.recv().unwrap().unwrap().slice::<u32>().unwrap(),
        &[1, 2, 3]
    );
    let msg = consumer.recv().unwrap().unwrap();
    let ticks: &[Tick] = msg.slice().unwrap();
    assert_eq!(ticks.len(), 3);
    assert_eq!(ticks[2].qty, 2);
    drop(msg);
    // A 16-aligned type is read by copy.
    let msg = consumer.recv().unwrap().unwrap();
    assert_eq!(msg.read_value::<Wide>().unwrap(), Wide([5, 6]));
    assert_eq!(typed::read::<Wide>(&msg).unwrap(), Wide([5, 6]));
}

#[test]
fn a_length_that_does_not_fit_the_type_is_a_clear_error() {
    let ring = Ring::memfd(4096).unwrap();
    let (mut producer, mut consumer) = (ring.producer().unwrap(), ring.consumer().unwrap());
    producer.send(&[0u8; 12]).unwrap();
    let msg = consumer.recv().unwrap().unwrap();
    let err = msg.value::<Tick>().unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongLength {
                len: 12,
                size: 16,
                slice: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        // Names the call, then what did not fit.
        err.to_string()
            .starts_with("Message::value: message of 12 bytes is not a "),
        "{err}"
    );
    assert!(err.to_string().ends_with("Tick (16 bytes)"), "{err}");
    let err = msg.slice::<u64>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "Message::slice: message of 12 bytes is not a whole number of u64 (8 bytes each)"
    );
    assert!(msg.read_value::<Wide>().is_err());
    assert_eq!(msg.slice::<u32>().unwrap().len(), 3);
    drop(msg);

    let mut claim = producer.claim(12).unwrap();
    assert!(matches!(
        claim.value_mut::<u64>(),
        Err(Error::WrongLength {
            len: 12,
            size: 8,
            ..
        })
    ));
    assert!(claim.slice_mut::<u64>().is_err());
    claim.discard();

    // An empty message is an empty slice of anything, and no value.
    producer.send(&[]).unwrap();
    let msg = consumer.recv().unwrap().unwrap();
    assert!(msg.slice::<Tick>().unwrap().is_empty());
    assert!(msg.value::<u8>().is_err());
}

#[test]
fn typed_endpoints_send_and_receive_one_type_checked_once() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer_of::<Tick>().unwrap();
    let mut consumer = ring.consumer_of::<Tick>().unwrap();
    for qty in 0..5 {
        producer
            .send(&Tick {
                price: 1.5,
                qty,
                side: 1,
            })
            .unwrap();
    }
    let mut got = Vec::new();
    while let Some(tick) = consumer.try_recv().unwrap() {
        got.push(tick.qty); // in place: a TypedMessage dereferences to the Tick
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(!consumer.is_ended());
    producer
        .try_send(&Tick {
            price: 2.0,
            qty: 9,
            side: 0,
        })
        .unwrap();
    assert_eq!(consumer.recv_value().unwrap().map(|t| t.qty), Some(9));
    producer.close().unwrap();
    assert!(consumer.recv().unwrap().is_none());
    assert!(consumer.is_ended());
}

#[test]
fn a_message_of_another_length_names_the_typed_call_and_is_consumed() {
    let ring = Ring::memfd(4096).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer_of::<u64>().unwrap();
    producer.send(&[1, 2, 3]).unwrap();
    producer.send_value(&7u64).unwrap();
    let err = consumer.recv().unwrap_err();
    assert_eq!(
        err.to_string(),
        "TypedConsumer::recv: message of 3 bytes is not a u64 (8 bytes)"
    );
    // Not received again: the next receive goes on with the next message.
    assert_eq!(*consumer.recv().unwrap().unwrap(), 7);
}

#[test]
fn a_type_larger_than_the_ring_s_largest_message_is_refused_when_the_endpoint_is_made() {
    let ring = Ring::memfd(4096).unwrap(); // largest message: 2040 bytes
    let err = ring.producer_of::<[u64; 512]>().unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                len: 4096,
                max: 2040
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        ring.consumer_of::<[u64; 512]>(),
        Err(Error::TooLarge { len: 4096, .. })
    ));
    // The roles were not kept by the refused endpoints.
    assert!(ring.producer_of::<[u8; 1024]>().is_ok());
    assert!(ring.consumer_of::<u8>().is_ok());
}
