//! The driver that runs a plan in one session: layer hooks and tests call the guest.

use std::time::Instant;

use super::layer_run::LayerRun;
use super::layers::{Flow, HookCall, LayerDriver, LayerHook, LayerStack, Scope};
use super::{EventSink, RunError, RunOptions, Session, Summary};
use crate::abi::hook;

/// Carries out the layer state machine's decisions in `session`.
pub(super) struct SessionDriver<'s, 'e, 'p> {
    /// The session whose instances run everything.
    pub session: &'s mut Session<'e>,
    /// The suite and plan.
    pub cx: Scope<'p>,
    /// How to run.
    pub options: &'p RunOptions,
}

impl LayerDriver for SessionDriver<'_, '_, '_> {
    fn begin(&mut self, _position: usize) -> Result<(), RunError> {
        Ok(())
    }

    fn call(&mut self, layer: usize, which: LayerHook) -> Result<Option<HookCall>, RunError> {
        let code = match which {
            // A set-up needs an instance even when the layer has no hook (the unit-test
            // layer): its tests run in it.
            LayerHook::SetUp => {
                self.session.instance()?;
                hook::SET_UP
            }
            LayerHook::TearDown => hook::TEAR_DOWN,
        };
        let started = Instant::now();
        let result = self.session.call_hook(self.cx.plan, layer, code)?;
        let elapsed = started.elapsed();
        Ok(Some(HookCall::new(result, elapsed, self.session.take_output())))
    }

    fn lose_instance(&mut self) {
        self.session.discard_instance();
    }

    fn run_layer(
        &mut self,
        position: usize,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<Flow, RunError> {
        let (cx, options) = (self.cx, self.options);
        LayerRun::new(cx, &cx.plan.layers[position], options).run(self, stack, sink, summary)
    }
}
