//! Cluster mode, one owner per object: leases with a rising epoch (the fencing token), renewed
//! by their holder and lost by a node that cannot reach Redis.

use std::time::Duration;

use redis::aio::ConnectionManager;
use spacebar::cluster::{keys, lease};

use crate::common::redis::Redis;

async fn connect(redis: &Redis) -> ConnectionManager {
    let client = ::redis::Client::open(redis.url()).unwrap();
    ConnectionManager::new(client).await.unwrap()
}

const TTL: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn a_lease_has_one_holder_and_every_new_holder_a_higher_epoch() {
    let redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_guild(1);
    let a = lease::acquire(&mut conn, &key, "host:1", TTL)
        .await
        .unwrap();
    let a = a.expect("a free lease is taken");
    assert!(a.is_valid());
    assert_eq!(
        lease::holder(&mut conn, &key).await.unwrap(),
        Some(("host:1".to_owned(), a.epoch()))
    );
    // Held: nobody else takes it, not even the holder again.
    for node in ["host:2", "host:1"] {
        let taken = lease::acquire(&mut conn, &key, node, TTL).await.unwrap();
        assert!(taken.is_none(), "{node} took a held lease");
    }
    lease::release(&mut conn, &a).await.unwrap();
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    let b = lease::acquire(&mut conn, &key, "host:2", TTL)
        .await
        .unwrap();
    let mut b = b.expect("a released lease is free");
    assert!(b.epoch() > a.epoch());
    // The old holder can neither renew nor release what is now another's.
    let mut stale = a.clone();
    assert!(!lease::renew(&mut conn, &mut stale, TTL).await.unwrap());
    assert!(!stale.is_valid(), "a lost lease stops being valid at once");
    lease::release(&mut conn, &a).await.unwrap();
    assert_eq!(
        lease::holder(&mut conn, &key).await.unwrap(),
        Some(("host:2".to_owned(), b.epoch()))
    );
    assert!(lease::renew(&mut conn, &mut b, TTL).await.unwrap());
    assert!(b.is_valid());
}

#[actix_web::test]
async fn a_lapsed_lease_is_not_renewed_and_goes_to_a_new_epoch() {
    let redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_room("7");
    let short = Duration::from_millis(300);
    let mut a = lease::acquire(&mut conn, &key, "a", short)
        .await
        .unwrap()
        .unwrap();
    // Valid for less than the lease lasts in Redis.
    assert!(a.remaining() < short);
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert!(!a.is_valid());
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    // Renewing a lapsed lease does not take it back: the next owner needs a new epoch.
    assert!(!lease::renew(&mut conn, &mut a, short).await.unwrap());
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    let b = lease::acquire(&mut conn, &key, "b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(b.epoch() > a.epoch());
}

#[actix_web::test]
async fn epochs_keep_rising_after_redis_loses_its_counters() {
    let mut redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_guild(2);
    let a = lease::acquire(&mut conn, &key, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    redis.restart();
    let mut conn = connect(&redis).await;
    let b = lease::acquire(&mut conn, &key, "b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(b.epoch() > a.epoch(), "{} then {}", a.epoch(), b.epoch());
}
