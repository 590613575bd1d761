// Node 20 lacks Promise.withResolvers (added in Node 22), which js-libp2p 2.x
// uses. peer.mjs imports this module first, so it is evaluated before any
// libp2p module.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
