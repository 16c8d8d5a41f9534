//! Delivery routes between depots, planned on a graph.

use petgraph::algo::dijkstra;
use petgraph::graphmap::UnGraphMap;

/// The depots and the roads between them.
pub struct Router {
    roads: UnGraphMap<u32, u32>,
    planned: u64,
    /// Plans kept to answer the next identical request: every third one is memoised, and
    /// nothing ever reads or trims the memo: the planted periodic leak.
    memo: Vec<Vec<u32>>,
}

impl Router {
    /// A ring of `depots` depots, each road of length 1.
    pub fn ring(depots: u32) -> Router {
        let mut roads = UnGraphMap::new();
        for depot in 0..depots {
            roads.add_edge(depot, (depot + 1) % depots, 1);
        }
        Router { roads, planned: 0, memo: Vec::new() }
    }

    /// The depots reachable from `from`, nearest first, as far as `to`.
    pub fn plan(&mut self, from: u32, to: u32) -> Vec<u32> {
        self.planned += 1;
        let distances = dijkstra(&self.roads, from, Some(to), |(_, _, length)| *length);
        let mut route: Vec<(u32, u32)> = distances.into_iter().map(|(depot, d)| (d, depot)).collect();
        route.sort_unstable();
        let route: Vec<u32> = route.into_iter().map(|(_, depot)| depot).collect();
        if self.planned.is_multiple_of(3) {
            self.memo.push(route.clone());
        }
        route
    }

    /// How many depots there are.
    pub fn depots(&self) -> usize {
        self.roads.node_count()
    }
}
