import { TidesyncPlugin } from '@tidesync/client/vue'
import { createApp, ref } from 'vue'
import App from './App.vue'
import { DEMO_KEY } from './demo-context.js'
import { markLoadSteps, markOnce } from './perf-marks.js'
import { pageSettled, registerServiceWorker } from './register-sw.js'
import { loadName, loadOfflineSwitch } from './session.js'
import { connect } from './sync/connection.js'
import './style.css'

markOnce('demo:script-start')
const name = ref(loadName())
const { socket, client } = connect({ name: name.value, online: !loadOfflineSwitch() })
markLoadSteps(client, socket)

createApp(App)
  .use(TidesyncPlugin, { client, closeOnUnmount: true })
  .provide(DEMO_KEY, { socket, client, name, actionError: ref(null) })
  .mount('#app')
markOnce('demo:app-mounted')

registerServiceWorker(pageSettled(client))
