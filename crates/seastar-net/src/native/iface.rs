//! The addresses of the interface a shard's stack serves.

use std::net::Ipv4Addr;

use super::ethernet::Mac;

/// Our host address, its subnet, the default gateway and our MAC.
///
/// ```
/// use std::net::Ipv4Addr;
/// use seastar_net::native::{ethernet::Mac, iface::Iface};
/// let i = Iface {
///     addr: Ipv4Addr::new(10, 0, 0, 2),
///     netmask: Ipv4Addr::new(255, 255, 255, 0),
///     gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
///     mac: Mac([2, 0, 0, 0, 0, 2]),
/// };
/// assert_eq!(i.next_hop(Ipv4Addr::new(10, 0, 0, 7)), Some(Ipv4Addr::new(10, 0, 0, 7)));
/// assert_eq!(i.next_hop(Ipv4Addr::new(8, 8, 8, 8)), Some(Ipv4Addr::new(10, 0, 0, 1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Our IPv4 address.
    pub addr: Ipv4Addr,
    /// The subnet mask of `addr`.
    pub netmask: Ipv4Addr,
    /// The router for destinations off the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Our hardware address.
    pub mac: Mac,
}

impl Iface {
    /// Whether `ip` is on our subnet.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        let m = self.netmask.to_bits();
        ip.to_bits() & m == self.addr.to_bits() & m
    }

    /// The address to resolve to reach `dst`: itself on the subnet, the
    /// gateway otherwise (`None`: off-link and no gateway).
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.on_link(dst) {
            Some(dst)
        } else {
            self.gateway
        }
    }
}

/// The addresses of a native stack, without the MAC (which comes from
/// the device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfaceAddrs {
    /// Our IPv4 address.
    pub addr: Ipv4Addr,
    /// Its subnet mask.
    pub netmask: Ipv4Addr,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_link_without_gateway_has_no_next_hop() {
        let i = Iface {
            addr: Ipv4Addr::new(192, 168, 1, 10),
            netmask: Ipv4Addr::new(255, 255, 0, 0),
            gateway: None,
            mac: Mac::ZERO,
        };
        assert!(i.on_link(Ipv4Addr::new(192, 168, 200, 1)));
        assert_eq!(i.next_hop(Ipv4Addr::new(192, 169, 0, 1)), None);
    }
}
