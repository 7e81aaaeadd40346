import { type Component, createRenderer } from 'vue'

/** A node of the DOM-free test renderer. */
export interface TestNode {
  type: string
  text?: string
  parent: TestNode | null
  children: TestNode[]
}

function node(type: string, text?: string): TestNode {
  return { type, text, parent: null, children: [] }
}

/**
 * A minimal Vue renderer over plain objects, so components mount and unmount for real (setup,
 * scopes, provide/inject, lifecycle) in Node without a DOM.
 */
const renderer = createRenderer<TestNode, TestNode>({
  createElement: (type) => node(type),
  createText: (text) => node('#text', text),
  createComment: (text) => node('#comment', text),
  setText: (target, text) => {
    target.text = text
  },
  setElementText: (target, text) => {
    target.children = text ? [Object.assign(node('#text', text), { parent: target })] : []
  },
  insert: (child, parent, anchor) => {
    child.parent = parent
    const index = anchor ? parent.children.indexOf(anchor) : -1
    if (index >= 0) parent.children.splice(index, 0, child)
    else parent.children.push(child)
  },
  remove: (child) => {
    const parent = child.parent
    if (parent) parent.children.splice(parent.children.indexOf(child), 1)
    child.parent = null
  },
  parentNode: (target) => target.parent,
  nextSibling: (target) => {
    const siblings = target.parent?.children ?? []
    return siblings[siblings.indexOf(target) + 1] ?? null
  },
  patchProp: () => {},
})

export function createTestApp(component: Component) {
  const app = renderer.createApp(component)
  const root = node('root')
  return { app, root, mount: () => app.mount(root), unmount: () => app.unmount() }
}
