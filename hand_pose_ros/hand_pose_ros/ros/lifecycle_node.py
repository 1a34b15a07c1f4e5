"""
hand_pose_lifecycle_node: hand_pose_node as a managed (lifecycle) node.

Robot stacks and bag pipelines bring nodes up in order (nav2-style bringup, `ros2 lifecycle
set`), so this node starts unconfigured and does nothing until told. It runs the plain
node's code through the seams of HandPoseNode (init_state, camera_names, _make_tracker,
open_io), so there is one code path, not a copy:

- configure: reads and checks the parameters (declared at construction, so they can be set
  before configure), loads the models. A bad value fails the transition with the reason in
  the log and leaves the node unconfigured.
- activate: subscribes, advertises and starts the worker (what the plain node does at start).
- deactivate: stops the worker and removes the subscriptions, publishers and timers that
  activate made, so no frame is taken and nothing is published; the models stay loaded.
- cleanup: releases the models. shutdown (and Ctrl-C in any state, through spin_node):
  releases whatever the current state holds.

Publishers are removed rather than made inactive (LifecyclePublisher) because CameraIO and
NodeFusion create theirs the plain node's way; a subscriber sees the publisher leave on
deactivate and come back on activate.
"""

from __future__ import annotations

from typing import Any

from hand_pose_ros.ros import parameters
from hand_pose_ros.ros.node import HandPoseNode, WORKER_JOIN_S
from hand_pose_ros.ros.spin import spin_node
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


class HandPoseLifecycleNode(HandPoseNode, LifecycleNode):
    """The hand tracking node, managed; see the module docstring."""

    def __init__(self, node_name: str = 'hand_pose_node', **kwargs: Any):
        # Not HandPoseNode.__init__: that is configure + activate at once.
        LifecycleNode.__init__(self, node_name, **kwargs)
        parameters.declare_all(self, check=False)
        self._io_entities: list[Any] | None = None  # what activate created, while active
        self._param_callback: Any = None
        self._configured = False
        self._callback_errors = 0  # spin_node counts callback errors in any state
        self.get_logger().info('unconfigured: waiting for configure (ros2 lifecycle set)')

    # ------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            values = {s.name: self.get_parameter(s.name).value for s in parameters.PARAMS}
            parameters.check_values(values)
            self.init_state(values)
            self._make_tracker(self.camera_names())
        except ValueError as exc:
            self.get_logger().error(f'configure failed, still unconfigured: {exc}')
            return TransitionCallbackReturn.FAILURE
        self._param_callback = self.add_on_set_parameters_callback(self.on_set_parameters)
        self._configured = True
        self.get_logger().info(f'configured ({self.resolved_runtime})')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        before = self._entities()
        self.open_io(self.camera_names())
        self._io_entities = [e for e in self._entities() if e not in before]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_io()
        self.get_logger().info('deactivated: not taking frames, models kept')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_models()
        self.get_logger().info('cleaned up: models released')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------ releasing
    def _entities(self) -> list[Any]:
        return [*self.subscriptions, *self.publishers, *self.timers]

    def _close_io(self) -> None:
        """Stop the worker first (it publishes), then remove what activate created."""
        if self._io_entities is None:
            return
        self.worker.stop(WORKER_JOIN_S)
        for entity in self._io_entities:
            if entity in self.timers:
                self.destroy_timer(entity)
            elif entity in self.subscriptions:
                self.destroy_subscription(entity)
            else:
                self.destroy_publisher(entity)
        self._io_entities = None

    def _release_models(self) -> None:
        if not self._configured:
            return
        if self._param_callback is not None:
            self.remove_on_set_parameters_callback(self._param_callback)
            self._param_callback = None
        # A worker still inside inference keeps the runtime (see HandPoseNode.destroy_node).
        if not (hasattr(self, 'worker') and self.worker.alive):
            self.tracker.close()
        self._configured = False

    def _release(self) -> None:
        self._close_io()
        self._release_models()

    def destroy_node(self) -> None:
        """
        Ctrl-C or SIGTERM in any state: release what that state holds, then the node.

        The context is down by then; Node.destroy_node removes every entity in one go. rclpy's
        LifecycleNode.destroy_node (Jazzy) leaves its state machine, which holds the rcl node:
        the node, its lifecycle services and transition_event publisher, and the middleware's
        participant would stay on the graph until Python collects this object, after
        rclpy.shutdown() and the stop watchdog of spin_node, at interpreter exit. Releasing the
        state machine here finalises them now, as Node.destroy_node does for a plain node (the
        state machine must not be used afterwards: its handle is gone).
        """
        if self._io_entities is not None:
            self.worker.stop(WORKER_JOIN_S)
            self._io_entities = None
        self._release_models()
        LifecycleNode.destroy_node(self)
        self._state_machine.destroy_when_not_in_use()


def main(args: list[str] | None = None) -> None:
    spin_node(HandPoseLifecycleNode, args)


if __name__ == '__main__':
    main()
