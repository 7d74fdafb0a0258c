//! Nothing here: the package holds the `glommio` criterion bench only.
