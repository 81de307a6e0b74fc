//! Create-only writes on real Blob Storage (Azurite): a small object and a large one
//! (uploaded in parts to a staging name, then committed with a create-only copy) are
//! created once; the same bytes again are accepted; other bytes at the same name are
//! refused and the stored object stays as it was.
//!
//! One test in its own binary: it points object_store at Azurite through the process
//! environment, which no other test may see.

mod support;

use support::azurite::Azurite;
use tapline_store::archive::{INCOMING, MULTIPART_THRESHOLD, PutOutcome};
use tapline_store::{Archive, ArchiveLocation, StoreError};

#[test]
fn blob_objects_are_created_once_and_never_replaced() {
    let az = Azurite::start();
    let archive_ref = az.archive("createonly", "p");
    for (k, v) in az.env() {
        // SAFETY: this binary runs this one test, before any other thread exists.
        unsafe { std::env::set_var(k, v) };
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let location = ArchiveLocation::parse(&archive_ref.location).unwrap();
        let archive = Archive::open(&location).unwrap();
        let small = "events/date=2026-01-01/gw-s-0000000000000001.parquet";
        assert_eq!(
            archive.put(small, b"one".to_vec()).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            archive.put(small, b"one".to_vec()).await.unwrap(),
            PutOutcome::AlreadyThere
        );
        let err = archive.put(small, b"two".to_vec()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(&archive.get(small).await.unwrap()[..], b"one");

        let large = "events/date=2026-01-01/gw-s-0000000000000002.parquet";
        let big: Vec<u8> = (0..MULTIPART_THRESHOLD + 5_000_000)
            .map(|i| (i % 253) as u8)
            .collect();
        assert_eq!(
            archive
                .put_segment(large, big.clone().into())
                .await
                .unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            archive
                .put_segment(large, big.clone().into())
                .await
                .unwrap(),
            PutOutcome::AlreadyThere
        );
        let mut other = big.clone();
        other[12_345] ^= 0xff;
        let err = archive.put_segment(large, other.into()).await.unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        let back = archive.get(large).await.unwrap();
        assert!(back == big, "the stored object is the first one");
        assert!(
            archive.list(INCOMING).await.unwrap().is_empty(),
            "no staging object is left behind"
        );
    });
}
