//! The echo benchmark function built with `ironlambda-runtime`'s `sonic` feature, as a
//! package of its own: cargo unifies features across a package, so in any package with the
//! plain echo function the feature would reach that one too. The library itself is empty.
