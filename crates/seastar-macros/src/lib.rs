//! Procedural macros for seastar-rs. Use them through `seastar-core`, which
//! re-exports them: `#[seastar_core::test]`.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, ItemFn, LitInt, LitStr, meta::ParseNestedMeta, parse_macro_input};

/// Runs an `async fn` test on a fresh seastar-rs runtime.
///
/// ```
/// use std::time::Duration;
/// use seastar_core::timer::{self, ManualClock};
///
/// #[seastar_core::test(manual_clock)]
/// async fn sleep_ends_when_the_clock_passes_its_deadline() {
///     let sleeper = seastar_core::spawn_local(timer::sleep(Duration::from_secs(60)));
///     ManualClock::advance(Duration::from_secs(60)).await;
///     sleeper.await.unwrap();
/// }
///
/// #[seastar_core::test(shards = 2, timeout_secs = 10)]
/// async fn a_call_to_shard_1_comes_back() -> Result<(), seastar_core::smp::SubmitError> {
///     let id = seastar_core::smp::submit_to(1, || async { seastar_core::shard_id() }).await?;
///     assert_eq!(id, 1);
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// The test runs on shard 0 of a runtime built for it, unpinned and without
/// signal handling, on a thread of its own (named after the test). Before
/// anything else it prints its seed to stderr:
///
/// ```text
/// seastar test seed: 8167027368466425345 (replay with SEASTAR_TEST_SEED=8167027368466425345)
/// ```
///
/// In debug builds every shard then runs its ready tasks in an order drawn
/// from that seed instead of first come, first served, so a test (or code)
/// that relies on an order the runtime does not promise fails, and
/// `SEASTAR_TEST_SEED=N cargo test ...` replays the order of the failing
/// run. The promise that is kept: `yield_now` lets every task that was ready
/// run before the yielding task resumes. Release builds keep the FIFO.
///
/// # Arguments
///
/// - `shards = N`: the number of shards (default 1).
/// - `backend = "epoll"` or `backend = "io_uring"`: forces the reactor
///   backend, whatever `SEASTAR_REACTOR_BACKEND` says. Default: as a
///   [`Runtime::builder()`] would (`SEASTAR_REACTOR_BACKEND`, else
///   io_uring when available).
/// - `manual_clock`: the runtime's clock is a `ManualClock`; time moves
///   only through `ManualClock::advance`.
/// - `timeout_secs = N`: a test still running after N seconds fails
///   (instead of hanging the suite); its runtime is left behind.
///
/// The function must be an `async fn` without arguments returning `()` or
/// `Result<(), E>` with `E: Debug` (an `Err` fails the test). Other
/// attributes (`#[ignore]`, `#[should_panic]`) apply to the test as usual.
///
/// [`Runtime::builder()`]: https://docs.rs/seastar-core/latest/seastar_core/struct.Runtime.html
///
/// # Errors at compile time
///
/// A function that is not `async`:
///
/// ```compile_fail
/// #[seastar_core::test]
/// fn not_async() {}
/// # fn main() {}
/// ```
///
/// A function with arguments:
///
/// ```compile_fail
/// #[seastar_core::test]
/// async fn with_argument(n: u32) {}
/// # fn main() {}
/// ```
///
/// An unknown backend, zero shards, an unknown argument:
///
/// ```compile_fail
/// #[seastar_core::test(backend = "kqueue")]
/// async fn unknown_backend() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[seastar_core::test(shards = 0)]
/// async fn no_shards() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[seastar_core::test(threads = 2)]
/// async fn unknown_argument() {}
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut opts = Options::default();
    let parser = syn::meta::parser(|meta| opts.parse(meta));
    parse_macro_input!(args with parser);
    let item = parse_macro_input!(item as ItemFn);
    match expand(&opts, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Options {
    shards: Option<LitInt>,
    backend: Option<(Span, &'static str)>,
    manual_clock: bool,
    timeout_secs: Option<LitInt>,
}

impl Options {
    fn parse(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let span = meta.path.span();
        if meta.path.is_ident("shards") {
            let n: LitInt = meta.value()?.parse()?;
            if n.base10_parse::<usize>()? == 0 {
                return Err(Error::new(n.span(), "`shards` must be at least 1"));
            }
            self.shards = Some(n);
        } else if meta.path.is_ident("backend") {
            let s: LitStr = meta.value()?.parse()?;
            let variant = match s.value().as_str() {
                "epoll" => "Epoll",
                "io_uring" => "IoUring",
                _ => {
                    return Err(Error::new(
                        s.span(),
                        "`backend` is \"epoll\" or \"io_uring\" (leave it out to follow SEASTAR_REACTOR_BACKEND)",
                    ));
                }
            };
            self.backend = Some((s.span(), variant));
        } else if meta.path.is_ident("manual_clock") {
            self.manual_clock = true;
        } else if meta.path.is_ident("timeout_secs") {
            let n: LitInt = meta.value()?.parse()?;
            n.base10_parse::<u64>()?;
            self.timeout_secs = Some(n);
        } else {
            return Err(Error::new(
                span,
                "unknown argument: expected `shards = N`, `backend = \"epoll\" | \"io_uring\"`, `manual_clock` or `timeout_secs = N`",
            ));
        }
        Ok(())
    }
}

fn expand(opts: &Options, item: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span(),
            "#[seastar_core::test] runs an `async fn`: add `async`",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(Error::new(
            sig.inputs.span(),
            "#[seastar_core::test] functions take no arguments",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            "#[seastar_core::test] functions are not generic",
        ));
    }
    if let Some(c) = &sig.constness {
        return Err(Error::new(c.span(), "a test cannot be a `const fn`"));
    }
    if let Some(u) = &sig.unsafety {
        return Err(Error::new(u.span(), "a test cannot be an `unsafe fn`"));
    }

    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let name = &sig.ident;
    let output = &sig.output;
    let shards = match &opts.shards {
        Some(n) => quote!(#n),
        None => quote!(1),
    };
    let manual_clock = opts.manual_clock.then(|| quote!(.manual_clock()));
    let backend = match opts.backend {
        Some((span, variant)) => {
            let variant = syn::Ident::new(variant, span);
            quote_spanned!(span=> ::core::option::Option::Some(::seastar_core::BackendKind::#variant))
        }
        None => quote!(::core::option::Option::None),
    };
    let timeout = match &opts.timeout_secs {
        Some(n) => quote!(::core::option::Option::Some(::std::time::Duration::from_secs(#n))),
        None => quote!(::core::option::Option::None),
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            async fn #name() #output #block
            ::seastar_core::Runtime::builder()
                .shards(#shards)
                #manual_clock
                .__run_test(#backend, #timeout, #name)
        }
    })
}
